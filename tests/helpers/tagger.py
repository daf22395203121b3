"""A run-like model folder built in a second (random tiny BERT, WordPiece over a Persian text) and the invariants
every tagging result must keep (offsets into the original text, no overlap, whole words)."""

from __future__ import annotations

import json
from pathlib import Path

from parsner.data.wordtok import tokenize_words

LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]

#: Written for these tests: news-like Persian with ZWNJ, digits of three kinds, Latin and punctuation.
TRAIN_TEXT = (
    "علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت کتاب‌ها و دانشجویان اهمیت دارند. "
    "سازمان ملل متحد در نیویورک اعلام کرد که ۳۵ درصد کمک‌ها به ایران و عراق می‌رسد؛ "
    "شرکت Apple و خبرگزاری ایرنا 2023 ١٢٣ ۱۴۰۲ مهر سال کشور شهر مردم دولت وزیر"
)


def build_model_dir(path: Path, *, seed: int = 0, normalizer: bool = True, max_length: int = 512) -> Path:
    """A run-like directory: random tiny BERT, WordPiece tokenizer, parsner.json and normalizer.json."""
    import torch

    from parsner.inference.standins import build_tiny_model, build_tiny_tokenizer

    words = [w.text for w in tokenize_words(TRAIN_TEXT)]
    tok = build_tiny_tokenizer([words] * 3, vocab_size=400)
    torch.manual_seed(seed)
    model = build_tiny_model(
        len(tok), LABELS, pad_token_id=tok.pad_token_id, layers=2, hidden=32, heads=2, intermediate=64,
        max_positions=max_length,
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    (path / "parsner.json").write_text(json.dumps({"max_length": max_length, "stride": 16}), encoding="utf-8")
    if normalizer:
        from parsner.data.normalize import NormalizerConfig, PersianNormalizer

        PersianNormalizer(NormalizerConfig()).save(path)
    return path


def check_entities(text: str, entities: list[dict]) -> None:
    """The invariants every result must satisfy."""
    prev_end = 0
    for ent in entities:
        assert set(ent) == {"text", "label", "start", "end", "score"}
        assert isinstance(ent["start"], int) and isinstance(ent["end"], int)
        assert 0 <= ent["start"] < ent["end"] <= len(text)
        assert ent["text"] == text[ent["start"] : ent["end"]]
        assert ent["start"] >= prev_end, "entities overlap or are out of order"
        # Never cut through a run of letters/digits of the original text (words may lose a trailing
        # ZWNJ or lone diacritic that the normaliser removed, so compare letters, not word objects).
        s, e = ent["start"], ent["end"]
        assert not (s > 0 and text[s - 1].isalnum() and text[s].isalnum()), "entity starts inside a word"
        assert not (e < len(text) and text[e - 1].isalnum() and text[e].isalnum()), "entity ends inside a word"
        assert ent["label"] in {"LOC", "ORG", "PER"}
        assert 0.0 < ent["score"] <= 1.0
        prev_end = ent["end"]


def predict(argv: list[str], capsys) -> tuple[int, str, str]:
    """``parsner predict ARGV`` in this process: exit code, stdout, stderr (which never holds a traceback)."""
    from helpers.train import assert_no_traceback
    from parsner.cli import main

    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    assert_no_traceback(err)
    return code, out, err
