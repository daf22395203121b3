"""Our offset-preserving normaliser agrees with hazm's Normalizer on the character maps both implement.

ParsNER does not call hazm at run time (``import hazm`` costs ~3 s and hazm's output carries no offset map),
so this test pins the compatibility instead: Arabic letters, three digit systems, diacritics and ``%`` are
normalised exactly as hazm 0.10 does. The deliberate differences are listed and checked too.
"""

from __future__ import annotations

import pytest

from parsner.normalize import NormalizerConfig, PersianNormalizer

hazm = pytest.importorskip("hazm")

SAME = "يكى" + "0123456789" + "٠١٢٣٤٥٦٧٨٩" + "ةأإؤئ" + "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652" + "%"
# ۀ: ParsBERT's vocabulary spells it ه + hamza above; tatweel: a stretching glyph, removed inside words.
DELIBERATE = {"ۀ": "هٔ", "ـ": ""}


@pytest.fixture(scope="module")
def pair() -> tuple[object, PersianNormalizer]:
    theirs = hazm.Normalizer(
        correct_spacing=False, remove_diacritics=True, remove_specials_chars=False,
        decrease_repeated_chars=False, persian_style=False, persian_numbers=True,
        unicodes_replacement=True, seperate_mi=False,
    )
    return theirs, PersianNormalizer(NormalizerConfig.for_parsbert())


@pytest.mark.parametrize("ch", list(SAME))
def test_character_maps_match_hazm(pair, ch: str) -> None:
    theirs, ours = pair
    text = f"ب{ch}ب"
    assert ours.normalize_text(text) == theirs.normalize(text)


@pytest.mark.parametrize(("ch", "expected"), list(DELIBERATE.items()))
def test_deliberate_differences(pair, ch: str, expected: str) -> None:
    theirs, ours = pair
    text = f"ب{ch}ب"
    assert ours.normalize_text(text) == f"ب{expected}ب"
    assert theirs.normalize(text) != ours.normalize_text(text)


def test_offsets_survive_what_hazm_would_change(pair) -> None:
    """Where hazm changes a sentence, ours changes it the same way AND maps every word back."""
    theirs, ours = pair
    text = "رئيس كل بانك در سال 1403 گفت نرخ تورم ٢٥% كاهش مي‌يابد"
    nt = ours.normalize(text)
    assert nt.text == theirs.normalize(text)
    start = nt.text.index("بانک")
    s, e = nt.to_original(start, start + len("بانک"))
    assert text[s:e] == "بانك"
