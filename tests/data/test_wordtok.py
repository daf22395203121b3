"""Raw-text word and sentence tokenisation: offsets into the original text must always hold."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsner.data.wordtok import (
    INVISIBLE_CHARS,
    Word,
    _patterns,
    is_space_like,
    split_sentences,
    tokenize_words,
    word_spans,
)

ZWNJ = "\u200c"


def texts(s: str) -> list[str]:
    return [w.text for w in tokenize_words(s)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("کتاب‌ها را خواندم", ["کتاب‌ها", "را", "خواندم"]),
        ("«تهران»، ایران؛ چرا؟", ["«", "تهران", "»", "،", "ایران", "؛", "چرا", "؟"]),
        ("قیمت ۱۲٬۵۰۰ و ۳٫۵٪ و 10,000 و 3.5", ["قیمت", "۱۲٬۵۰۰", "و", "۳٫۵", "٪", "و", "10,000", "و", "3.5"]),
        ("روز ۱۴۰۲/۰۵/۱۲ ساعت 21:30", ["روز", "۱۴۰۲/۰۵/۱۲", "ساعت", "21:30"]),
        ("عدد ٣٫٥ عربی", ["عدد", "٣٫٥", "عربی"]),
        ("سال 1399. او", ["سال", "1399", ".", "او"]),  # a '.' not followed by a digit is punctuation
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("mail a.b@x.co.ir now", ["mail", "a.b@x.co.ir", "now"]),
        ("see https://ex.com/a?b=1. ok", ["see", "https://ex.com/a?b=1", ".", "ok"]),
        ("(www.isna.ir)", ["(", "www.isna.ir", ")"]),
        ("#علی_دایی و @user و C#", ["#علی_دایی", "و", "@user", "و", "C", "#"]),
        ("عالی 👍🏻 👨\u200d👩\u200d👧 🇮🇷!", ["عالی", "👍🏻", "👨\u200d👩\u200d👧", "🇮🇷", "!"]),
        ("صبر کن... بعد", ["صبر", "کن", "...", "بعد"]),
        ("کِتابٌ", ["کِتابٌ"]),  # diacritics stay inside the word
        ("ـ اردبیل", ["ـ", "اردبیل"]),  # a lone tatweel (ARMAN's dateline dash) is a word
        (f"{ZWNJ}کتاب{ZWNJ} {ZWNJ} ها", ["کتاب", "ها"]),  # ZWNJ at word edges or alone belongs to no word
        ("۲۰۲۳م mp3", ["۲۰۲۳م", "mp3"]),
        ("", []),
        (" \n\t ", []),
    ],
)
def test_tokenize_words_cases(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_words_carry_offsets() -> None:
    text = "  سلام، «دنیا»!"
    words = tokenize_words(text)
    assert words[0] == Word("سلام", 2, 6)
    assert all(text[w.start : w.end] == w.text for w in words)
    assert word_spans(text) == [(w.start, w.end) for w in words]


# An alphabet that exercises every rule: Persian and Arabic letters, invisible characters, diacritics,
# three kinds of digits and their separators, whitespace of several kinds, punctuation, Latin, emoji,
# URL/handle bits.
ALPHABET = (
    "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیآأإؤئءة"
    "يكىۀـ"
    "\u200c\u200d\u200b\u00ad\u200f\ufeff"
    "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0654\u0670"
    "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩0123456789٫٬.,/:"
    " \n\t\u00a0\u2009\r"
    "،؛؟«»!?()\"'-%٪…"
    "abcXYZ_@#"
    "👍🏻🇮🇷\ufe0f\u20e3😀"
)
random_text = st.one_of(
    st.text(alphabet=ALPHABET, max_size=80),
    st.lists(
        st.sampled_from(["https://", "www.", "a@b.ir", "می", ZWNJ, "ها", " ", "۳٫۵", ". ", "»"]), max_size=12
    ).map("".join),
)


@settings(max_examples=400, deadline=None)
@given(random_text)
def test_words_are_exact_ordered_and_cover_every_visible_char(text: str) -> None:
    words = tokenize_words(text)
    covered = [False] * len(text)
    prev_end = 0
    for w in words:
        assert w.text == text[w.start : w.end]
        assert w.start >= prev_end and w.end > w.start
        assert not any(ch.isspace() for ch in w.text)
        assert w.text[0] not in INVISIBLE_CHARS and w.text[-1] not in INVISIBLE_CHARS
        for i in range(w.start, w.end):
            covered[i] = True
        prev_end = w.end
    for i, ch in enumerate(text):
        if not covered[i]:
            assert is_space_like(ch), f"{ch!r} at {i} belongs to no word"
    # Tokenising chunk by chunk (the fast path) gives exactly what the full pattern gives.
    full = _patterns()[0]
    assert [(w.start, w.end) for w in words] == [m.span() for m in full.finditer(text)]


@settings(max_examples=400, deadline=None)
@given(random_text)
def test_sentences_are_ordered_and_cover_every_word(text: str) -> None:
    spans = split_sentences(text)
    starts = {w.start for w in tokenize_words(text)}
    ends = {w.end for w in tokenize_words(text)}
    prev_end = 0
    for start, end in spans:
        assert prev_end <= start < end
        assert start in starts and end in ends
        assert "\n" not in text[start:end] and "\r" not in text[start:end]
        prev_end = end
    inside = [False] * len(text)
    for start, end in spans:
        for i in range(start, end):
            inside[i] = True
    for i, ch in enumerate(text):
        if not inside[i]:
            assert is_space_like(ch), f"{ch!r} at {i} is in no sentence"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("او آمد. ما رفتیم.", ["او آمد.", "ما رفتیم."]),
        ("چرا؟! نمی‌دانم", ["چرا؟!", "نمی‌دانم"]),
        ("او گفت: «می‌آیم.» سپس رفت.", ["او گفت: «می‌آیم.»", "سپس رفت."]),
        ("قیمت ۳.۵ دلار شد. خوب", ["قیمت ۳.۵ دلار شد.", "خوب"]),
        ("فایل file.txt را دید", ["فایل file.txt را دید"]),
        ("سال ۵۰ ق.م. بود", ["سال ۵۰ ق.م. بود"]),
        ("Dr. Smith came. Then", ["Dr. Smith came.", "Then"]),
        ("گفت «نه... شاید» و رفت", ["گفت «نه... شاید» و رفت"]),
        ("خط اول\nخط دوم\r\n\n  سوم", ["خط اول", "خط دوم", "سوم"]),
        ("...", ["..."]),
        ("", []),
        ("  \n ", []),
    ],
)
def test_split_sentences_cases(text: str, expected: list[str]) -> None:
    assert [text[s:e] for s, e in split_sentences(text)] == expected
