"""The Persian normaliser: hand cases, persistence, and offset-map/idempotency properties."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsner.data.normalize import (
    NORMALIZER_FILE,
    NORMALIZER_VERSION,
    NormalizerConfig,
    PersianNormalizer,
)
from parsner.data.wordtok import tokenize_words
from parsner.errors import ConfigError

ZWNJ = "\u200c"
PARSBERT = PersianNormalizer(NormalizerConfig.for_parsbert())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Arabic letters
        ("كتاب يك", "کتاب یک"),
        ("مصطفى", "مصطفی"),
        ("ۀ", "هٔ"),
        ("ﻻ ﺑﺎ", "لا با"),  # presentation forms
        ("مسئول مؤسسه", "مسئول مؤسسه"),  # hamza spellings are kept
        # digits and punctuation
        ("سال 1402 و ٤٥٦", "سال ۱۴۰۲ و ۴۵۶"),
        ("۲۰% «تهران» “x”", '۲۰٪ "تهران" "x"'),
        ("10,000", "۱۰,۰۰۰"),  # an ASCII comma in a number is not touched
        # diacritics and tatweel
        ("کِتابٌ مُحَمَّد", "کتاب محمد"),
        ("کـــتاب", "کتاب"),
        ("اردبیل ـ استاندار", "اردبیل ـ استاندار"),  # a standalone tatweel is a dash
        ("َ", "َ"),  # a lone diacritic stays
        # ZWNJ and other invisible characters
        (f"کتاب{ZWNJ}{ZWNJ}ها", f"کتاب{ZWNJ}ها"),
        (f"{ZWNJ}کتاب{ZWNJ} و", "کتاب و"),
        ("کتاب\u200bها کتاب\u00adها", f"کتاب{ZWNJ}ها کتاب{ZWNJ}ها"),
        ("ب\u200dی 👨\u200d👩\u200d👧", f"ب{ZWNJ}ی 👨\u200d👩\u200d👧"),  # emoji ZWJ sequences survive
        ("\u200fسلام\ufeff", "سلام"),
        # spaces
        ("  سلام \u00a0  دنیا \n\n  بعد  ", "سلام دنیا\nبعد"),
        # hazm-style affix spacing
        ("می شود نمی  کند", f"می{ZWNJ}شود نمی{ZWNJ}کند"),
        ("کتاب ها بزرگ ترین خانه ای گفته اند", f"کتاب{ZWNJ}ها بزرگ{ZWNJ}ترین خانه{ZWNJ}ای گفته{ZWNJ}اند"),
        ("ها می", "ها می"),  # no letter to attach to
        ("", ""),
    ],
)
def test_parsbert_cases(text: str, expected: str) -> None:
    assert PARSBERT.normalize(text).text == expected
    assert PARSBERT.normalize_text(text) == expected


def test_digit_modes() -> None:
    text = "۱۲ ٣٤ 56"
    assert PersianNormalizer(NormalizerConfig(digits="ascii")).normalize_text(text) == "12 34 56"
    assert PersianNormalizer(NormalizerConfig(digits="persian")).normalize_text(text) == "۱۲ ۳۴ ۵۶"
    assert PersianNormalizer(NormalizerConfig(digits="keep")).normalize_text(text) == text


def test_options_switch_their_step_off() -> None:
    text = "كِتابـ‌ها  ۱"

    def norm(**option: bool) -> str:
        return PersianNormalizer(NormalizerConfig(**option)).normalize_text(text)

    assert norm() == f"کتاب{ZWNJ}ها ۱"
    assert norm(arabic_letters=False) == f"كتاب{ZWNJ}ها ۱"
    assert norm(remove_diacritics=False) == f"کِتاب{ZWNJ}ها ۱"
    assert norm(remove_tatweel=False) == f"کتابـ{ZWNJ}ها ۱"
    assert norm(collapse_spaces=False) == f"کتاب{ZWNJ}ها  ۱"


def test_none_is_identity() -> None:
    n = PersianNormalizer(NormalizerConfig.none())
    text = "  كِتابـ\u200c\u200c ها 12%  «x» \u200f"
    nt = n.normalize(text)
    assert nt.text == text
    assert nt.to_original(2, 9) == (2, 9)
    assert n.normalize_token(text) == text


def test_offsets_map_back_to_the_original() -> None:
    text = "  كِتابـ\u200c\u200cهاي  «تهران» 12% می  شود"
    nt = PARSBERT.normalize(text)
    assert nt.text == f'کتاب{ZWNJ}های "تهران" ۱۲٪ می{ZWNJ}شود'
    words = tokenize_words(nt.text)
    back = [text[a:b] for a, b in (nt.to_original(w.start, w.end) for w in words)]
    assert back == ["كِتابـ\u200c\u200cهاي", "«", "تهران", "»", "12", "%", "می  شود"]
    # the other way: the original word "تهران" is the normalised word "تهران"
    o = text.index("تهران")
    s, e = nt.from_original(o, o + 5)
    assert nt.text[s:e] == "تهران"
    # a span of deleted characters only (the leading spaces) maps to an empty span
    s, e = nt.from_original(0, 2)
    assert s == e
    # empty spans and bounds
    assert nt.to_original(0, 0) == (2, 2)
    with pytest.raises(ValueError):
        nt.to_original(0, len(nt.text) + 1)


def test_normalize_token_never_empties_a_token() -> None:
    assert PARSBERT.normalize_token(ZWNJ) == ZWNJ
    assert PARSBERT.normalize_token("ـ") == "ـ"
    assert PARSBERT.normalize_token("ً") == "ً"
    assert PARSBERT.normalize_token("می شود") == f"می{ZWNJ}شود"  # PEYMA tokens contain spaces
    assert PARSBERT.normalize_token("| ") == "|"
    assert PARSBERT("يك") == "یک"


def test_parsbert_preset_maps_into_the_vocab(parsbert_tokenizer_dir: Path) -> None:
    vocab = set((parsbert_tokenizer_dir / "vocab.txt").read_text(encoding="utf-8").split("\n"))
    unknown = "ك0123456789%«»“”"
    assert not set(unknown) & vocab, "the test assumes these characters are not in the vocab"
    for ch in unknown:
        assert PARSBERT.normalize_token(ch) in vocab, ch
    # the joined forms persian_style makes are whole vocab entries once the tokenizer drops the ZWNJ
    assert PARSBERT.normalize_token("می شود").replace(ZWNJ, "") in vocab


# --------------------------------------------------------------------------------------------- persistence


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    n = PersianNormalizer(NormalizerConfig(digits="ascii", persian_style=False))
    path = n.save(tmp_path / "run")
    assert path.name == NORMALIZER_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == NORMALIZER_VERSION
    loaded = PersianNormalizer.load(tmp_path / "run")
    assert loaded == n and loaded.config.digits == "ascii"
    assert PersianNormalizer.from_dict(n.to_dict()) == n


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": NORMALIZER_VERSION + 1, "config": {}}, "not supported"),
        ({"config": {}}, "no version"),
        ({"version": NORMALIZER_VERSION, "config": {"unknown_rule": True}}, "unknown normalizer option"),
        ({"version": NORMALIZER_VERSION, "config": {"digits": "roman"}}, "digits"),
        ({"version": NORMALIZER_VERSION, "config": {"zwnj": "yes"}}, "true or false"),
        ({"version": NORMALIZER_VERSION}, "config"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, data: dict, message: str) -> None:
    (tmp_path / NORMALIZER_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        PersianNormalizer.load(tmp_path)
    assert NORMALIZER_FILE in str(info.value)


def test_load_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        PersianNormalizer.load(tmp_path)
    (tmp_path / NORMALIZER_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid"):
        PersianNormalizer.load(tmp_path)


def test_presets() -> None:
    assert NormalizerConfig.preset("parsbert") == NormalizerConfig.for_parsbert()
    assert NormalizerConfig.preset("none") == NormalizerConfig.none()
    with pytest.raises(ConfigError, match="unknown normalizer preset"):
        NormalizerConfig.preset("hazm")


# -------------------------------------------------------------------------------------------- properties

ALPHABET = (
    "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیآأإؤئءة"  # Persian letters
    "يكىۀەھ"  # Arabic variants
    "ﻻﺑ"  # presentation forms
    "\u200c\u200c\u200d\u200b\u00ad\u200f\ufeff"  # ZWNJ (twice as likely), ZWJ, ZWSP, soft hyphen, RLM, BOM
    "\u064b\u064c\u064e\u064f\u0650\u0651\u0652\u0654\u0670ـ"  # diacritics, hamza above, tatweel
    "۰۱۲۳٠١٢0123٫٬.,"  # Persian / Arabic-Indic / ASCII digits and separators
    "  \n\t\u00a0"  # spaces (a plain space twice as likely)
    '،؛؟«»!?()"%“”-'  # punctuation
    "abXY"  # Latin
    "👍👨😀"  # emoji
)
# Fragments that trigger the multi-character rules (affix spacing) more often than random letters would.
FRAGMENTS = [
    *("می ", " ها", "خانه ای", "می", "نمی", "ها", "های", "ترین", "تر", "ای", "اند", "خانه", "کتاب"),
    *(" ", ZWNJ, "ـ", "\u064e", "\n"),
]
random_text = st.one_of(
    st.text(alphabet=ALPHABET, max_size=60),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=ALPHABET, max_size=2)), max_size=15).map(
        "".join
    ),
)
configs = st.builds(
    NormalizerConfig,
    arabic_letters=st.booleans(),
    digits=st.sampled_from(["persian", "ascii", "keep"]),
    remove_diacritics=st.booleans(),
    remove_tatweel=st.booleans(),
    zwnj=st.booleans(),
    remove_invisible=st.booleans(),
    collapse_spaces=st.booleans(),
    unify_punctuation=st.booleans(),
    guillemets_to_ascii=st.booleans(),
    persian_style=st.booleans(),
)
_normalizers: dict[tuple, PersianNormalizer] = {}


def normalizer_for(config: NormalizerConfig) -> PersianNormalizer:
    key = tuple(dataclasses.astuple(config))
    if key not in _normalizers:
        _normalizers[key] = PersianNormalizer(config)
    return _normalizers[key]


@settings(max_examples=500, deadline=None)
@given(random_text, st.one_of(st.just(NormalizerConfig.for_parsbert()), configs))
def test_normalisation_is_idempotent(text: str, config: NormalizerConfig) -> None:
    n = normalizer_for(config)
    once = n.normalize(text).text
    assert n.normalize_text(text) == once
    assert n.normalize(once).text == once


@settings(max_examples=500, deadline=None)
@given(random_text, st.one_of(st.just(NormalizerConfig.for_parsbert()), configs))
def test_offset_map_is_well_formed(text: str, config: NormalizerConfig) -> None:
    nt = normalizer_for(config).normalize(text)
    prev = (0, 0)
    for i in range(len(nt.text)):
        s, e = nt.to_original(i, i + 1)
        assert 0 <= s <= e <= len(text)
        assert s >= prev[0] and e >= prev[1]  # in order
        prev = (s, e)
    # each original character maps to the normalised characters made from it (none if it was deleted)
    for a in range(len(text)):
        s, e = nt.from_original(a, a + 1)
        assert 0 <= s <= e <= len(nt.text)
        for i in range(s, e):
            cs, ce = nt.to_original(i, i + 1)
            assert cs <= a < ce


@settings(max_examples=500, deadline=None)
@given(random_text, st.one_of(st.just(NormalizerConfig.for_parsbert()), configs))
def test_every_normalised_word_maps_back_to_its_source(text: str, config: NormalizerConfig) -> None:
    """The invariant the tagger relies on: a word of the normalised text maps back to an original span
    that normalises to exactly that word, and that span is trimmed of whitespace."""
    n = normalizer_for(config)
    nt = n.normalize(text)
    for w in tokenize_words(nt.text):
        a, b = nt.to_original(w.start, w.end)
        source = text[a:b]
        assert source and not source[0].isspace() and not source[-1].isspace()
        assert n.normalize(source).text == w.text, (w.text, source)
        # and that span maps forward onto the word again
        s, e = nt.from_original(a, b)
        assert s <= w.start and e >= w.end


@settings(max_examples=300, deadline=None)
@given(random_text)
def test_normalize_token_matches_normalize(text: str) -> None:
    out = PARSBERT.normalize_token(text)
    if text:
        assert out  # never empty for a non-empty token
    full = PARSBERT.normalize_text(text)
    assert out == (full if full else text)
