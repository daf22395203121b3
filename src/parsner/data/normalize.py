"""Persian text normalisation with an exact character-offset map back to the original text.

The same :class:`PersianNormalizer` is applied at training time (to dataset tokens, :meth:`normalize_token`)
and at inference (to raw text or its words), and is saved with every model as ``normalizer.json``.
The dataset itself always keeps the source tokens; normalisation is a recorded, replayable step.

Steps, in this order (each switched by a :class:`NormalizerConfig` field):

A. one-to-one character maps (``str.translate``): Arabic letter variants, digits, punctuation;
B. one-to-many maps: ``ۀ`` → ``هٔ``, Arabic presentation forms (``ﻻ`` → ``لا``) → letters;
C. ``remove_invisible``: bidi marks/controls, BOM, word joiner, Arabic letter mark are deleted;
D. ``zwnj``: zero-width space and soft hyphen become ZWNJ, and so do ZWJs in a zero-width run right after an
   Arabic-script character (a ZWJ elsewhere, e.g. inside an emoji sequence 👨‍👩‍👧, is kept);
E. ``remove_diacritics`` / ``remove_tatweel``: harakat, tanwin, shadda, sukun, superscript alef and Quranic
   marks, and kashida (a tatweel run after a letter), are deleted *when attached to a preceding character*;
F. ``zwnj``: a ZWNJ run between two word characters becomes one ZWNJ, any other ZWNJ is deleted;
G. ``persian_style``: the space in ``می شود`` / ``کتاب ها`` / ``خانه ای`` becomes a ZWNJ;
H. ``collapse_spaces``: a whitespace run becomes one space (one ``\\n`` if it holds a line break); leading and
   trailing whitespace is deleted.

Offsets: every character of the normalised text maps to a span of the original text (one-to-one
replacements to their source character, one-to-many to the whole source, a replacement of a run to the
whole run). A deleted diacritic or kashida is absorbed into the character it was attached to; other deleted
characters (whitespace, invisible characters) belong to no output character, so a span mapped back never
starts or ends with them. See :class:`NormalizedText`.

Guaranteed invariants (tested with hypothesis): normalisation is idempotent; for every word ``w`` of
:func:`parsner.data.wordtok.tokenize_words` on the normalised text, ``(a, b) = nt.to_original(w.start, w.end)``
gives an original span with ``normalize(original[a:b]).text == w.text``; and
``normalize_token(t) == normalize(t).text`` whenever that is not empty.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import json
import logging
import re
import unicodedata
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from parsner.errors import ConfigError

log = logging.getLogger(__name__)

#: Version of the ``normalizer.json`` format and of the normalisation rules. Bump it when a rule changes
#: what a text normalises to: a model must be used with the normaliser it was trained with.
NORMALIZER_VERSION = 1
NORMALIZER_FILE = "normalizer.json"

ZWNJ = "\u200c"
ZWJ = "\u200d"

# ----------------------------------------------------------------------------------------- character sets

#: Arabic (and Urdu/Pashto/Sindhi) letter variants → the Persian letter. ``ة`` (teh marbuta), ``أ إ ؤ ئ``
#: and ``آ`` are kept: they are correct Persian spellings (``مسئول``, ``مؤسسه``), and ParsBERT's uncased
#: tokenizer strips their hamza/madda itself.
ARABIC_LETTER_MAP: dict[str, str] = {
    **dict.fromkeys("كڪګڬڭڮ", "ک"),
    **dict.fromkeys("يىېۍێۑےۓؽؾؿؠٸ", "ی"),
    **dict.fromkeys("ەہۂۃھ", "ه"),
    **dict.fromkeys("ۄۅۆۇۈۉۊۋۏ", "و"),
    "ٱ": "ا",  # alef wasla
}
#: One-to-many letter maps: heh with yeh above is written as heh + hamza above (hazm's convention).
ARABIC_LETTER_EXPANSIONS: dict[str, str] = {"ۀ": "هٔ"}

PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
ASCII_DIGITS = "0123456789"

#: ``unify_punctuation``: ASCII percent → Arabic percent (ParsBERT's vocab has only ``٪``), curly quotes →
#: straight quotes (``“ ” „`` are not in ParsBERT's vocab, ``"`` is).
PUNCTUATION_MAP: dict[str, str] = {"%": "٪", "“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"}
#: ``guillemets_to_ascii``: ``« »`` → ``"``: they are ``[UNK]`` in ParsBERT v1's vocab.
GUILLEMET_MAP: dict[str, str] = {"«": '"', "»": '"'}

#: Diacritics removed by ``remove_diacritics``: Quranic honorifics, tanwin, harakat, shadda, sukun, small
#: marks, superscript/subscript alef and Quranic annotation marks. Madda (U+0653) and hamza above/below
#: (U+0654/U+0655) are kept: they are part of the letter (``هٔ``, ``آ`` written decomposed).
DIACRITICS = (
    "\u0610-\u061a\u064b-\u0652\u0656-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    "\u08d3-\u08e1\u08e3-\u08ff"
)
TATWEEL = "\u0640"
#: Deleted by ``remove_invisible``: Arabic letter mark, Mongolian vowel separator, LRM/RLM, bidi
#: embeddings/overrides/isolates, word joiner and invisible operators, BOM.
INVISIBLE = "\u061c\u180e\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
#: Zero-width characters that ``zwnj`` treats as (mistyped) ZWNJs. Without ``zwnj``, ``remove_invisible``
#: deletes the zero-width space and soft hyphen.
ZW_VARIANTS = "\u200b\u00ad"
_ARABIC_SCRIPT = "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc"
_LINE_BREAKS = "\n\r\u2028\u2029\x85"

DigitsMode = Literal["persian", "ascii", "keep"]


# -------------------------------------------------------------------------------------------------- config


@dataclass
class NormalizerConfig:
    """What the normaliser changes. Defaults are the ParsBERT preset; :meth:`none` changes nothing."""

    #: Arabic letter variants → Persian (``ي ى`` → ``ی``, ``ك ڪ`` → ``ک``, ``ە ھ`` → ``ه``, ``ۀ`` → ``هٔ``,
    #: ``ٱ`` → ``ا``) and Arabic presentation forms (``ﻻ``, ``ﺑ``…) → plain letters. See ARABIC_LETTER_MAP.
    arabic_letters: bool = True
    #: ``"persian"``: ASCII and Arabic-Indic digits → ``۰-۹`` (ParsBERT's vocab has Persian digits and maps
    #: every ASCII digit to ``[UNK]``); ``"ascii"``: Persian and Arabic-Indic → ``0-9``; ``"keep"``.
    digits: DigitsMode = "persian"
    #: Delete harakat, tanwin, shadda, sukun, superscript alef, Quranic marks (see DIACRITICS) attached to a
    #: preceding character. A mark after whitespace or at the start (a "lone" diacritic) is kept, so a
    #: token never disappears.
    remove_diacritics: bool = True
    #: Delete kashida: a tatweel run right after a letter or mark (``کـــتاب`` → ``کتاب``). A tatweel that
    #: follows no letter is a dash (ARMAN's ``اردبیل ـ استاندار``) and is kept.
    remove_tatweel: bool = True
    #: Zero-width space and soft hyphen, and ZWJ after an Arabic-script letter, → ZWNJ; a ZWNJ run between two
    #: word characters → one ZWNJ; ZWNJ next to a space, punctuation or at the text's edges is deleted.
    zwnj: bool = True
    #: Delete invisible format characters: LRM/RLM, bidi controls, BOM, word joiner, Arabic letter mark.
    remove_invisible: bool = True
    #: Whitespace runs → one space (one ``\n`` if the run holds a line break, so sentence splitting still
    #: sees paragraphs); NBSP and thin spaces become spaces; leading/trailing whitespace is deleted.
    collapse_spaces: bool = True
    #: ``%`` → ``٪``, ``“ ” „`` → ``"``, ``‘ ’ ‚`` → ``'`` (see PUNCTUATION_MAP). ``? ; ,`` are left alone:
    #: ``10,000`` must stay a number, and ParsBERT knows both the ASCII and the Persian forms.
    unify_punctuation: bool = True
    #: ``« »`` → ``"``: guillemets are ``[UNK]`` in ParsBERT v1's vocab (PEYMA has 1,268 of them).
    guillemets_to_ascii: bool = True
    #: hazm-style affix spacing: the space (or spaces) in ``می شود`` / ``نمی شود`` / ``کتاب ها`` /
    #: ``بزرگ ترین`` / ``خانه ای`` / ``گفته اند`` becomes a ZWNJ. ParsBERT v1 was pre-trained on the joined
    #: forms (``میشود``, ``کتابها`` are whole vocab entries), and PEYMA writes them with a space.
    persian_style: bool = True

    def __post_init__(self) -> None:
        if self.digits not in ("persian", "ascii", "keep"):
            raise ConfigError(f"normalizer digits must be 'persian', 'ascii' or 'keep', not {self.digits!r}")
        for f in dataclasses.fields(self):
            if f.name != "digits" and not isinstance(getattr(self, f.name), bool):
                value = getattr(self, f.name)
                raise ConfigError(f"normalizer option {f.name} must be true or false, not {value!r}")

    @classmethod
    def for_parsbert(cls) -> NormalizerConfig:
        """Everything on, Persian digits: what suits ParsBERT's (v1) uncased vocabulary."""
        return cls()

    @classmethod
    def none(cls) -> NormalizerConfig:
        """The identity: every option off."""
        return cls(
            arabic_letters=False,
            digits="keep",
            remove_diacritics=False,
            remove_tatweel=False,
            zwnj=False,
            remove_invisible=False,
            collapse_spaces=False,
            unify_punctuation=False,
            guillemets_to_ascii=False,
            persian_style=False,
        )

    @classmethod
    def for_parsbert_zwnj(cls) -> NormalizerConfig:
        """ParsBERT v3 (``bert-fa-zwnj-base``): the same character maps as :meth:`for_parsbert`.

        Both keep ZWNJ between letters and write affix spacing (``می شود``) with one; the v1/v2 tokenizers
        then delete it themselves while v3's keeps it. A separate name lets each run say which model
        family its preprocessing was chosen for.
        """
        return cls()

    @classmethod
    def preset(cls, name: str) -> NormalizerConfig:
        """``"parsbert"``, ``"parsbert-zwnj"`` or ``"none"`` (the names a run config uses)."""
        presets: dict[str, Callable[[], NormalizerConfig]] = {
            "parsbert": cls.for_parsbert, "parsbert-zwnj": cls.for_parsbert_zwnj, "none": cls.none,
        }
        if name not in presets:
            raise ConfigError(f"unknown normalizer preset {name!r} (expected one of: {', '.join(presets)})")
        return presets[name]()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalizerConfig:
        """Unknown keys are an error (a newer file may mean rules this version does not have)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown normalizer option(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


# ---------------------------------------------------------------------------------------- normalised text


@dataclass
class NormalizedText:
    """A normalised text and the map of each of its characters to a span of the original text.

    ``to_original(start, end)`` maps a span of :attr:`text` to the smallest original span that produced it;
    ``from_original`` maps the other way. Deleted whitespace/invisible characters belong to no output
    character, so mapped spans never start or end with them.
    """

    original: str
    text: str
    # For each output character i, the original span [_starts[i], _ends[i]) it came from. Both arrays are
    # non-decreasing; an inserted character would have _starts[i] == _ends[i].
    _starts: array = field(repr=False)
    _ends: array = field(repr=False)

    def _check(self, start: int, end: int, length: int, what: str) -> None:
        if not 0 <= start <= end <= length:
            raise ValueError(f"span ({start}, {end}) is not inside the {what} text of length {length}")

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]``; an empty span maps to an empty span at that place."""
        self._check(start, end, len(self.text), "normalised")
        if start < end:
            return self._starts[start], self._ends[end - 1]
        if start < len(self.text):
            pos = self._starts[start]
        elif self.text:
            pos = self._ends[-1]
        else:
            pos = 0
        return pos, pos

    def spans_to_original(self, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """:meth:`to_original` of many non-empty spans at once (the tagger maps every word of a text)."""
        starts, ends, n = self._starts, self._ends, len(self.text)
        if any(not 0 <= a < b <= n for a, b in spans):
            bad = next((a, b) for a, b in spans if not 0 <= a < b <= n)
            raise ValueError(f"span {bad} is not a non-empty span inside the normalised text of length {n}")
        return [(starts[a], ends[b - 1]) for a, b in spans]

    def from_original(self, start: int, end: int) -> tuple[int, int]:
        """The normalised span made from ``original[start:end]`` (empty if all of it was deleted)."""
        self._check(start, end, len(self.original), "original")
        nstart = bisect.bisect_right(self._ends, start)
        nend = bisect.bisect_left(self._starts, end) if end > start else nstart
        return nstart, max(nstart, nend)


# -------------------------------------------------------------------------------------- the normaliser


@functools.cache
def _presentation_forms() -> dict[str, str]:
    """Arabic presentation forms → their NFKC letters, when those are letters only (``ﻻ`` → ``لا``).

    Forms whose NFKC holds a space (``ﷺ`` → a four-word phrase) or a lone mark are left alone: expanding
    them would create words from one character.
    """
    out: dict[str, str] = {}
    for cp in (*range(0xFB50, 0xFE00), *range(0xFE70, 0xFF00)):
        ch = chr(cp)
        if unicodedata.category(ch) != "Lo":
            continue
        nfkc = unicodedata.normalize("NFKC", ch)
        if nfkc != ch and all(unicodedata.category(c) == "Lo" for c in nfkc):
            out[ch] = nfkc
    return out


class _Step:
    """One regex step with offset tracking.

    For each match, ``repl`` (a string, or a function of the match returning a string or ``None`` to leave
    the match alone) replaces the span of group ``group`` of the match (the whole match by default; a
    group lets a pattern look at context without lookbehinds, which would make ``re`` try every position).
    ``trigger``: characters of which at least one must be in the text for the step to run at all.

    Mapping of a replacement: same length → character by character; empty → deleted, absorbed into the
    previous output character when ``absorb`` (diacritics, kashida) or else mapped to nothing; other →
    every new character maps to the whole replaced span.
    """

    __slots__ = ("absorb", "group", "pattern", "repl", "trigger")

    def __init__(
        self,
        pattern: str,
        repl: str | Callable[[re.Match[str]], str | None],
        *,
        absorb: bool = False,
        group: int = 0,
        trigger: str = "",
    ) -> None:
        self.pattern = re.compile(pattern)
        self.repl = repl
        self.absorb = absorb
        self.group = group
        self.trigger = trigger

    def _replacement(self, m: re.Match[str]) -> str | None:
        return self.repl if isinstance(self.repl, str) else self.repl(m)

    def apply(self, text: str, starts: list[int] | None, ends: list[int] | None) -> tuple[str, Any, Any]:
        """Apply to ``text``; ``starts``/``ends`` are None when offsets are not tracked."""
        if self.trigger and not any(ch in text for ch in self.trigger):
            return text, starts, ends
        g = self.group
        if starts is None or ends is None:
            if isinstance(self.repl, str) and g == 0:
                return self.pattern.sub(self.repl, text), None, None

            def sub(m: re.Match[str]) -> str:
                rep = self._replacement(m)
                if rep is None:
                    return m.group()
                s0 = m.start()
                return text[s0 : m.start(g)] + rep + text[m.end(g) : m.end()]

            return self.pattern.sub(sub, text), None, None
        pieces: list[str] = []
        new_s: list[int] = []
        new_e: list[int] = []
        pos = 0
        for m in self.pattern.finditer(text):
            rep = self._replacement(m)
            if rep is None:
                continue
            a, b = m.span(g)
            pieces.append(text[pos:a])
            new_s.extend(starts[pos:a])
            new_e.extend(ends[pos:a])
            if len(rep) == b - a:
                new_s.extend(starts[a:b])
                new_e.extend(ends[a:b])
            elif not rep:
                if self.absorb and new_e and a > 0:
                    new_e[-1] = ends[b - 1]
            else:
                new_s.extend([starts[a]] * len(rep))
                new_e.extend([ends[b - 1]] * len(rep))
            pieces.append(rep)
            pos = b
        if not pieces:
            return text, starts, ends
        pieces.append(text[pos:])
        new_s.extend(starts[pos:])
        new_e.extend(ends[pos:])
        return "".join(pieces), new_s, new_e


class PersianNormalizer:
    """Configurable Persian normaliser; see the module docstring for the steps and guarantees."""

    def __init__(self, config: NormalizerConfig | None = None) -> None:
        self.config = config if config is not None else NormalizerConfig.for_parsbert()
        self._table, self._steps = self._build()
        self._is_identity = not self._table and not self._steps
        # Characters that may need a regex step; a token without any of them only needs the table.
        slow = "".join(sorted(self._slow_chars))
        self._slow_re = re.compile(f"[{re.escape(slow)}\\s]") if slow else re.compile(r"\s")
        self._cache: dict[str, str] = {}

    # -- construction

    def _build(self) -> tuple[dict[int, str], list[_Step]]:
        c = self.config
        one: dict[str, str] = {}
        if c.arabic_letters:
            one.update(ARABIC_LETTER_MAP)
        if c.digits == "persian":
            one.update(zip(ASCII_DIGITS + ARABIC_INDIC_DIGITS, PERSIAN_DIGITS * 2, strict=True))
        elif c.digits == "ascii":
            one.update(zip(PERSIAN_DIGITS + ARABIC_INDIC_DIGITS, ASCII_DIGITS * 2, strict=True))
        if c.unify_punctuation:
            one.update(PUNCTUATION_MAP)
        if c.guillemets_to_ascii:
            one.update(GUILLEMET_MAP)
        table = {ord(k): v for k, v in one.items()}
        steps: list[_Step] = []
        self._slow_chars: set[str] = set()

        if c.arabic_letters:  # B
            expand = {k: v.translate(table) for k, v in _presentation_forms().items()}
            expand.update(ARABIC_LETTER_EXPANSIONS)
            self._slow_chars.update(expand)
            steps.append(_Step(f"[{re.escape(''.join(expand))}]", lambda m, e=expand: e[m.group()]))
        if c.remove_invisible:  # C
            chars = INVISIBLE + ("" if c.zwnj else ZW_VARIANTS)
            self._slow_chars.update(_expand_class(chars))
            steps.append(_Step(f"[{chars}]+", ""))
        if c.zwnj:  # D
            self._slow_chars.update(ZW_VARIANTS + ZWJ + ZWNJ)
            steps.append(_Step(f"[{ZW_VARIANTS}]", ZWNJ, trigger=ZW_VARIANTS))
            # ZWSPs and soft hyphens are ZWNJs now; a zero-width run holding a ZWJ after an Arabic letter too.
            run = f"(?<=[{_ARABIC_SCRIPT}]){ZWNJ}*+{ZWJ}[{ZWNJ}{ZWJ}]*"
            steps.append(_Step(run, lambda m: ZWNJ * len(m.group()), trigger=ZWJ))
        if c.remove_tatweel:  # E (kashida first: a diacritic may sit on it)
            self._slow_chars.add(TATWEEL)
            after_letter = f"(?<=[{_ARABIC_SCRIPT}])(?<=[^\\W\\d_{TATWEEL}])"
            kashida = f"(?:{after_letter}|(?<=[{DIACRITICS}]))[{TATWEEL}{DIACRITICS}]*{TATWEEL}"
            steps.append(_Step(kashida, "", absorb=True, trigger=TATWEEL))
        if c.remove_diacritics:
            self._slow_chars.update(_expand_class(DIACRITICS))
            steps.append(_Step(f"[{DIACRITICS}]+", _attached_only, absorb=True))
        if c.zwnj:  # F (before G: G then only turns spaces between letters into ZWNJs, which F would keep)
            word = _WORD_CLASS
            zwnj_runs = f"(?<!{word}){ZWNJ}++|{ZWNJ}++(?!{word})|{ZWNJ}{{2,}}"
            steps.append(_Step(zwnj_runs, _zwnj_run, trigger=ZWNJ))
        if c.persian_style:  # G: a separator run becomes one ZWNJ when its context (checked in Python) fits
            hs = f"[^\\S{_LINE_BREAKS}]"
            sep = f"{ZWNJ}*{hs}(?:{hs}|{ZWNJ})*"
            letter = "[^\\W\\d_]"
            end = f"(?![\\w{ZWNJ}{DIACRITICS}])"
            steps.append(_Step(f"ن?می({sep})(?={letter})", _after_non_word, group=1))
            suffixes = "ها|های|هایی|هایم|هایت|هایش|هایمان|هایتان|هایشان|تر|تری|ترین"
            steps.append(_Step(f"{sep}(?=(?:{suffixes}){end})", _after_two_letters))
            steps.append(_Step(f"{sep}(?=(?:ی|ای|ام|ات|اش|ایم|اید|اند){end})", _after_letter_heh))
        if c.collapse_spaces:  # H: only runs that change: 2+ characters, not " "/"\n", at the text's edges
            steps.append(_Step("^\\s+|\\s++\\Z|\\s{2,}|[^\\S \n]", _space_run))
        return table, steps

    # -- normalisation

    def normalize(self, text: str) -> NormalizedText:
        """Normalise ``text``, keeping the map of every output character to the original."""
        out = text.translate(self._table) if self._table else text
        starts: Any = list(range(len(text)))
        ends: Any = list(range(1, len(text) + 1))
        for step in self._steps:
            out, starts, ends = step.apply(out, starts, ends)
        return NormalizedText(text, out, array("q", starts), array("q", ends))

    def normalize_text(self, text: str) -> str:
        """Only the normalised string (no offset map): faster."""
        out = text.translate(self._table) if self._table else text
        for step in self._steps:
            out = step.apply(out, None, None)[0]
        return out

    def normalize_token(self, token: str) -> str:
        """Normalise one dataset token or word (cached; most tokens need only the character table).

        Equals ``normalize_text(token)``, except that a non-empty token that would normalise to ``""`` (only
        invisible characters or whitespace, e.g. a stray ZWNJ token) is returned unchanged, so a token never
        vanishes and word/tag alignment holds. (Lone diacritics and lone tatweels are kept by the rules
        themselves.)
        """
        if self._is_identity:
            return token
        hit = self._cache.get(token)
        if hit is not None:
            return hit
        out = token.translate(self._table) if self._table else token
        if self._slow_re.search(out):
            out = self.normalize_text(token)
        if not out:
            out = token
        if len(self._cache) >= 500_000:
            self._cache.clear()
        self._cache[token] = out
        return out

    __call__ = normalize_token

    # -- persistence

    def to_dict(self) -> dict[str, Any]:
        return {"version": NORMALIZER_VERSION, "type": "PersianNormalizer", "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersianNormalizer:
        if not isinstance(data, dict) or "version" not in data:
            raise ConfigError("normalizer settings have no version number")
        if data["version"] != NORMALIZER_VERSION:
            raise ConfigError(
                f"normalizer version {data['version']!r} is not supported (this ParsNER reads version "
                f"{NORMALIZER_VERSION}); upgrade ParsNER to use this model"
            )
        config = data.get("config")
        if not isinstance(config, dict):
            raise ConfigError("normalizer settings have no 'config' mapping")
        return cls(NormalizerConfig.from_dict(config))

    def save(self, directory: str | Path) -> Path:
        """Write ``normalizer.json`` into ``directory`` (created if missing); returns its path."""
        path = Path(directory) / NORMALIZER_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> PersianNormalizer:
        """Read ``normalizer.json`` from ``directory`` (or the file itself)."""
        path = Path(directory)
        if path.is_dir():
            path = path / NORMALIZER_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: normalizer file not found") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid normalizer file: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PersianNormalizer) and other.config == self.config

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.config.to_dict().items())))

    def __repr__(self) -> str:
        return f"PersianNormalizer({self.config!r})"


# ------------------------------------------------------------------------------------------ replacements


def _expand_class(chars: str) -> list[str]:
    """The characters of a regex class body written with ``a-b`` ranges."""
    out: list[str] = []
    i = 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(chars[i]), ord(chars[i + 2]) + 1))
            i += 3
        else:
            out.append(chars[i])
            i += 1
    return out


_WORD_CLASS = f"[\\w{DIACRITICS}\u0653-\u0655]"
_WORD_RE = re.compile(_WORD_CLASS)
_NOT_WORD_RE = re.compile(f"[^\\w{ZWNJ}{DIACRITICS}]")


def _attached_only(m: re.Match[str]) -> str | None:
    """Delete a diacritic run only when attached to a preceding non-space character."""
    a = m.start()
    return "" if a > 0 and not m.string[a - 1].isspace() else None


_LETTER_RE = re.compile(r"[^\W\d_]")


def _after_two_letters(m: re.Match[str]) -> str | None:
    """``کتاب ها``, ``بزرگ ترین``: a ZWNJ if the word before the separator ends in two letters."""
    a, t = m.start(), m.string
    return ZWNJ if a >= 2 and _LETTER_RE.match(t, a - 2) and _LETTER_RE.match(t, a - 1) else None


def _after_letter_heh(m: re.Match[str]) -> str | None:
    """``خانه ای``, ``گفته اند``: a ZWNJ if the word before the separator ends in a letter + ``ه``."""
    a, t = m.start(), m.string
    return ZWNJ if a >= 2 and t[a - 1] == "ه" and _LETTER_RE.match(t, a - 2) else None


def _after_non_word(m: re.Match[str]) -> str | None:
    """``می``/``نمی`` + space: a ZWNJ only if the prefix starts a word (nothing word-like before it)."""
    a = m.start()
    return ZWNJ if a == 0 or _NOT_WORD_RE.match(m.string, a - 1) else None


def _zwnj_run(m: re.Match[str]) -> str | None:
    """A ZWNJ run: one ZWNJ when between two word characters, else nothing."""
    text, a, b = m.string, m.start(), m.end()
    inside = a > 0 and b < len(text) and _WORD_RE.match(text, a - 1) and _WORD_RE.match(text, b)
    if inside:
        return None if b - a == 1 else ZWNJ
    return ""


def _space_run(m: re.Match[str]) -> str | None:
    text, a, b = m.string, m.start(), m.end()
    if a == 0 or b == len(text):
        return ""
    s = m.group()
    rep = "\n" if any(ch in _LINE_BREAKS for ch in s) else " "
    return None if s == rep else rep


# ----------------------------------------------------------------------------------------- a model's normaliser

#: Preprocessing for hub models that ship no normalizer.json, by id: the ParsBERT families, whose
#: authors normalise with hazm's maps before the tokenizer. Any other model gets none unless asked.
HUB_NORMALIZER_DEFAULTS: tuple[tuple[str, str], ...] = (
    (r"^HooshvareLab/bert-fa-zwnj-", "parsbert-zwnj"),
    (r"^HooshvareLab/(bert-base-parsbert-|bert-fa-base-uncased|bert-fa-large-)", "parsbert"),
)
NORMALIZER_CHOICES = ("auto", "parsbert", "parsbert-zwnj", "none")


def default_normalizer(model: str) -> str | None:
    """The preset used for ``model`` when it has no normalizer.json (None: no normalisation)."""
    for pattern, preset in HUB_NORMALIZER_DEFAULTS:
        if re.match(pattern, model, re.IGNORECASE):
            return preset
    return None


def choose_normalizer(
    choice: str, *, saved: Path | None, named: Any = None, model: str
) -> tuple[PersianNormalizer | None, str]:
    """``(PersianNormalizer or None, description)``: the one place where a model's normaliser is chosen.

    ``saved`` is the normalizer.json the model ships (None: none), ``named`` the preset its parsner.json names,
    ``model`` its path or hub id. ``choice``: ``auto`` (the saved file; else the named preset; else the default for
    the hub id, see :data:`HUB_NORMALIZER_DEFAULTS`; else none), a preset name, or the path of a normalizer.json.
    Every case that is not the model's own file is logged as a warning (``parsner.data.normalize``).
    """
    if choice == "auto":
        if saved is not None:
            return PersianNormalizer.load(saved), "normalizer.json saved with the model"
        if isinstance(named, str) and named != "none":
            log.warning("%s: parsner.json names the normaliser %r but normalizer.json is missing; using the %r "
                        "preset", model, named, named)
            return PersianNormalizer(NormalizerConfig.preset(named)), f"{named} (preset; normalizer.json missing)"
        if named == "none":
            return None, "none (as trained)"
        preset = default_normalizer(model)
        if preset is not None:
            return PersianNormalizer(NormalizerConfig.preset(preset)), f"{preset} (default for this hub id)"
        log.warning("%s has no normalizer.json: text goes to its tokenizer unnormalised "
                    "(pass --normalizer parsbert for a ParsBERT model)", model)
        return None, "none (the model has no normalizer.json)"
    if choice in NORMALIZER_CHOICES:
        if saved is not None:
            log.warning("--normalizer %s replaces the normalizer.json saved with %s", choice, model)
        if choice == "none":
            return None, "none (--normalizer none)"
        return PersianNormalizer(NormalizerConfig.preset(choice)), f"{choice} (--normalizer)"
    path = Path(choice)
    if not path.exists():
        raise ConfigError(f"--normalizer {choice!r}: not one of {', '.join(NORMALIZER_CHOICES)} nor a normalizer.json")
    return PersianNormalizer.load(path), f"{path} (--normalizer)"
