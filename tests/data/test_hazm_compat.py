"""Our offset-preserving normaliser agrees with hazm's Normalizer on the character maps both implement.

ParsNER does not call hazm at run time (``import hazm`` costs ~3 s and hazm's output carries no offset map),
so this test pins the compatibility instead, against whichever hazm is installed (the ``hazm`` extra gives 0.10 on
Python 3.11 and 0.12 on 3.12-3.13): Arabic letters, three digit systems, diacritics and ``%`` are normalised exactly
as hazm does. The deliberate differences are listed and checked too.

hazm 0.10 and 0.12 share these maps. 0.12 adds three presentation forms to its letter map (U+FBFC and U+FBFD, Farsi
yeh, to ی; U+FE82, alef with madda, to ا). Ours maps every presentation form to its NFKC letters, which agrees
with 0.12 on the two yehs and keeps the madda (ﺂ → آ): آ and ا are different letters in Persian and in ParsBERT's
vocabulary, so dropping it would change the word.
"""

from __future__ import annotations

import pytest

from parsner.data.normalize import NormalizerConfig, PersianNormalizer

hazm = pytest.importorskip(
    "hazm", reason="hazm is the optional extra `parsner[hazm]` (no hazm release installs on Python 3.14 yet)")

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


@pytest.mark.parametrize(("ch", "ours_expected", "hazm_010", "hazm_012"), [
    ("\ufbfc", "ی", "\ufbfc", "ی"),
    ("\ufbfd", "ی", "\ufbfd", "ی"),
    ("\ufe82", "آ", "\ufe82", "ا"),
])
def test_presentation_forms_hazm_012_added(pair, ch: str, ours_expected: str, hazm_010: str, hazm_012: str) -> None:
    """The three maps that differ between hazm 0.10 and 0.12: ours follows NFKC (see the module docstring)."""
    from importlib import metadata

    theirs, ours = pair
    assert ours.normalize_text(f"ب{ch}ب") == f"ب{ours_expected}ب"
    installed = metadata.version("hazm")
    expected = hazm_010 if installed.startswith("0.10") else hazm_012 if installed.startswith("0.12") else None
    if expected is None:
        pytest.skip(f"hazm {installed}: neither 0.10 nor 0.12, whose maps this test records")
    assert theirs.normalize(f"ب{ch}ب") == f"ب{expected}ب"
