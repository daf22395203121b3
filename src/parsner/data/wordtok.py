"""Raw text → words and sentences, every piece keeping its character offsets into the ORIGINAL text.

This is our own regex tokenizer rather than hazm's ``WordTokenizer``, for three reasons:

* speed: ``import hazm`` costs ~3 s (it pulls scikit-learn and gensim) and its tokenizer rewrites tokens
  (numbers, links, ...) so that offsets have to be searched for again; this module needs only ``re``;
* exact offsets: every :class:`Word` is a slice of the input (``text == original[start:end]``) by
  construction;
* it follows the conventions of the Persian news corpora we train on (PEYMA keeps ``1399/05/12``, ``21:30``,
  ``10,000`` and ``...`` as one token each, and splits every other punctuation mark off).

Rules, in order of priority at each position:

1. URLs (``https://…``, ``www.…``; trailing punctuation such as ``.`` ``،`` ``)`` is left out), emails, and
   Twitter-style ``#hashtag`` / ``@mention`` (only when ``#``/``@`` does not follow a letter);
2. emoji, with their modifiers (skin tones, variation selectors) and ZWJ sequences (👨‍👩‍👧), flags as
   regional-indicator pairs;
3. words: runs of letters, digits, ``_`` and combining marks (diacritics). Two runs are joined into one
   word by invisible characters between them (ZWNJ ``کتاب‌ها``, ZWJ, zero-width space, soft hyphen, bidi
   marks), and digit runs are joined by one decimal/thousands/date/time separator between two digits
   (``۳٫۵``, ``3.5``, ``۱۲٬۵۰۰``, ``10,000``, ``۱۴۰۲/۰۵/۱۲``, ``21:30`` are single words). Persian,
   Arabic-Indic and ASCII digits are all digits; digits and letters written together (``۲۰۲۳م``, ``mp3``) are
   one word;
4. a run of two or more ``.`` (an ellipsis);
5. anything else that is not space: one character per word (``،`` ``؛`` ``؟`` ``«`` ``»`` ``!`` ``-``
   ``%`` …), plus any combining marks that follow it.

"Space" here means Unicode whitespace (:meth:`str.isspace`) plus the invisible format characters in
:data:`INVISIBLE_CHARS` when they are not between two word characters: a ZWNJ at the edge of a word, or on
its own between spaces, belongs to no word. Hence: every character that is not space in this sense belongs to
exactly one word, words never contain whitespace, and words never start or end with an invisible character.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

#: Invisible format characters: kept inside a word when between word characters, treated as space otherwise.
#: Soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width space/ZWNJ/ZWJ, LRM/RLM, bidi
#: embeddings/overrides, word joiner and invisible operators, bidi isolates, BOM.
INVISIBLE_CHARS = (
    "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\ufeff"
)
_INVISIBLE_SET = frozenset(INVISIBLE_CHARS)

#: Characters that end a sentence (a run of them, e.g. ``؟!``, ends it once).
SENTENCE_END = frozenset(".!?؟‼⁇⁈⁉۔。")
#: Closing quotes/brackets that stay with the sentence they close: ``«او آمد.» سپس`` splits after ``»``.
CLOSERS = frozenset("»”’\"')]}›")
#: Latin abbreviations whose final ``.`` does not end a sentence (compared lower-case).
ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "inc", "ltd", "co", "jr", "sr", "no"}
)

_NEWLINE_RE = re.compile("[^\n\r\u2028\u2029\x85]+")
_HAS_SPACE_RE = re.compile(r"\s")


def is_space_like(ch: str) -> bool:
    """True for whitespace and for invisible format characters (which only count inside a word)."""
    return ch.isspace() or ch in _INVISIBLE_SET


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a raw text: ``text == original[start:end]``."""

    text: str
    start: int
    end: int


def _char_class(codepoints: list[int]) -> str:
    """A regex character class body for a sorted list of code points (compressed into ranges)."""
    parts: list[str] = []
    i = 0
    while i < len(codepoints):
        j = i
        while j + 1 < len(codepoints) and codepoints[j + 1] == codepoints[j] + 1:
            j += 1
        lo, hi = codepoints[i], codepoints[j]
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
        i = j + 1
    return "".join(parts)


_EMOJI_CHARS = "\u2300-\u23ff\u2600-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff"
#: Text without any of these cannot contain a URL, email, handle or emoji: the basic pattern is enough.
_SPECIAL_RE = re.compile(f"[@#{_EMOJI_CHARS}]|://|www\\.")


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(full, basic) word patterns, built on first use (~30 ms: it scans Unicode for combining marks).

    ``basic`` lacks the URL/email/handle/emoji branches; on text where :data:`_SPECIAL_RE` finds nothing
    those branches cannot match, so both give the same words, and ``basic`` is about 3x faster.
    """
    marks = [
        c
        for c in (*range(0x20000), *range(0xE0000, 0xE01F0))
        if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")
    ]
    # Combining marks, emoji skin tones and emoji tag characters extend the token before them.
    ext = _char_class(marks) + "\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
    inv = re.escape(INVISIBLE_CHARS)
    w = rf"[\w{ext}]"
    word = rf"{w}+(?:(?:[{inv}]+|(?<=\d)[.,٫٬/:](?=\d)){w}+)*"
    url_end = rf"[^\s{inv}«»\"<>.,;:!?،؛؟)\]}}'”’]"
    url = rf"(?:https?://|ftp://|www\.)(?:[^\s«»\"<>]*{url_end})?"
    email = r"\w[\w.+\-]*@\w[\w\-]*(?:\.\w[\w\-]*)+"
    handle = rf"(?<!\w)[#@]{word}"
    emoji_char = f"[{_EMOJI_CHARS}]"
    emoji = (
        rf"[\U0001f1e6-\U0001f1ff]{{2}}"
        rf"|{emoji_char}[{ext}]*(?:\u200d{emoji_char}[{ext}]*)*"
    )
    dots = rf"\.{{2,}}[{ext}]*"
    other = rf"[^\s{inv}][{ext}]*"
    full = re.compile(f"{url}|{email}|{handle}|{emoji}|{word}|{dots}|{other}")
    basic = re.compile(f"{word}|{dots}|{other}")
    return full, basic


def _finditer(text: str, pos: int = 0, endpos: int | None = None) -> Iterator[re.Match[str]]:
    """Word matches in ``text[pos:endpos]``: the full pattern only on the whitespace-delimited chunks that
    contain a URL/email/handle/emoji trigger, the basic one elsewhere.

    Exact because no word of either pattern contains whitespace, so chunks never cut a word.
    """
    full, basic = _patterns()
    end = len(text) if endpos is None else endpos
    cur = pos
    for trig in _SPECIAL_RE.finditer(text, pos, end):
        if trig.start() < cur:
            continue  # inside a chunk already done
        start = trig.start()
        while start > cur and not text[start - 1].isspace():
            start -= 1
        ws = _HAS_SPACE_RE.search(text, trig.end(), end)
        stop = ws.start() if ws else end
        yield from basic.finditer(text, cur, start)
        yield from full.finditer(text, start, stop)
        cur = stop
    yield from basic.finditer(text, cur, end)


def word_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` of each word of :func:`tokenize_words`, without building :class:`Word` objects."""
    return [m.span() for m in _finditer(text)]


def tokenize_words(text: str) -> list[Word]:
    """Split raw text into words with offsets (see the module docstring for the rules)."""
    return [Word(m.group(), m.start(), m.end()) for m in _finditer(text)]


def _is_terminal(words: list[Word], i: int) -> bool:
    """Does ``words[i]`` (a sentence-final mark) end a sentence, as far as the word itself can tell?"""
    tok = words[i].text
    if tok[0] not in SENTENCE_END or (tok[0] == "." and len(tok) > 1):
        # not a terminal mark, or an ellipsis: "..." marks an omission mid-sentence in news quotes
        return False
    if tok == "." and i > 0 and words[i - 1].end == words[i].start:
        prev = words[i - 1].text
        if (len(prev) == 1 and prev.isalpha()) or prev.lower() in ABBREVIATIONS:
            return False  # "ق.م." "U.S." "Dr." are abbreviations
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` over ``text``, hazm-like but offset-exact.

    A sentence ends at a newline, or after a run of ``. ! ? ؟`` (plus the closing quotes/brackets right after
    it) that is followed by whitespace or the end of the text. Not sentence ends: a ``.`` inside a number
    (``۳.۵`` is one word), a ``.`` not followed by space (``file.txt``), an ellipsis ``...`` / ``…``
    (omissions inside quotes are common in news; a too-long sentence is harmless, the tagger windows it),
    and the ``.``
    of an abbreviation (a single letter or a known Latin abbreviation right before it: ``ق.م.``, ``Dr.``).

    Each span runs from the first character of its first word to the last character of its last word, so
    spans are in order, never overlap, and together cover every non-space character of the text.
    """
    return [(sent[0].start, sent[-1].end) for sent in sentence_words(text)]


def sentence_words(text: str) -> list[list[Word]]:
    """The words of ``text`` grouped by sentence (see :func:`split_sentences` for the rules).

    One pass for callers that need both the words and the sentence boundaries (the tagger); the
    concatenation of the groups is exactly :func:`tokenize_words`.
    """
    sentences: list[list[Word]] = []
    for line in _NEWLINE_RE.finditer(text):
        a, b = line.span()
        words = [Word(m.group(), m.start(), m.end()) for m in _finditer(text, a, b)]
        n = len(words)
        first = 0
        i = 0
        while i < n:
            if not _is_terminal(words, i):
                i += 1
                continue
            j = i
            # absorb the adjacent run of sentence marks and closers: «...؟!»
            while (
                j + 1 < n
                and words[j + 1].start == words[j].end
                and (words[j + 1].text in CLOSERS or words[j + 1].text[0] in SENTENCE_END)
            ):
                j += 1
            if j + 1 == n or _HAS_SPACE_RE.search(text, words[j].end, words[j + 1].start):
                sentences.append(words[first : j + 1])
                first = j + 1
            i = j + 1
        if first < n:
            sentences.append(words[first:n])
    return sentences
