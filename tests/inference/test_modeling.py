"""Model/tokenizer loading: offline fast failure, stand-ins, tokenizer round trips, safetensors only."""

from __future__ import annotations

import json
import time

import pytest

from parsner.errors import ConfigError, ModelLoadError
from parsner.inference.hub import STAND_IN_WARNING, parse_spec
from parsner.inference.modeling import load_for_inference, load_model, load_tokenizer
from parsner.inference.standins import build_tiny_tokenizer

ZWNJ = "\u200c"
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
PERSIAN_WORDS = [f"می{ZWNJ}شود", "آگاهی", "مسئول", "آمریکا", f"کتاب{ZWNJ}ها", "پایتخت", "ئ", "آ"]


def test_parse_spec():
    assert parse_spec("tiny").kind == "tiny"
    assert parse_spec("tiny:3").layers == 3
    spec = parse_spec("parsbert-standin:4")
    assert (spec.kind, spec.layers) == ("parsbert-standin", 4)
    assert STAND_IN_WARNING in (spec.stand_in or "")
    assert parse_spec("HooshvareLab/bert-fa-base-uncased").kind == "hub"
    assert parse_spec("xlm-roberta-base").kind == "hub"
    assert parse_spec("HooshvareLab/bert-fa-base-uncased").stand_in is None
    with pytest.raises(ConfigError):
        parse_spec("tiny:zero")
    with pytest.raises(ModelLoadError, match="does not exist"):
        parse_spec("./no/such/model")


@pytest.mark.parametrize("what", ["tokenizer", "model"])
def test_hub_id_offline_fails_fast_with_guidance(what, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))  # certainly not cached
    t0 = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        if what == "tokenizer":
            load_tokenizer("HooshvareLab/bert-fa-base-uncased")
        else:
            load_model("HooshvareLab/bert-fa-base-uncased", LABELS)
    assert time.monotonic() - t0 < 10
    msg = str(info.value)
    assert "HooshvareLab/bert-fa-base-uncased" in msg
    assert "local directory" in msg and "--model tiny" in msg and "cache" in msg


def _roundtrip_ids(tokenizer, tmp_path, words):
    from transformers import AutoTokenizer

    before = tokenizer(words, is_split_into_words=True)["input_ids"]
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path))
    return before, reloaded(words, is_split_into_words=True)["input_ids"], reloaded


def test_tiny_tokenizer_keeps_zwnj_and_persian_letters_through_save_and_reload(tmp_path):
    tok = build_tiny_tokenizer([PERSIAN_WORDS * 3, ["تهران", "ایران"]], vocab_size=300)
    # the vocabulary has whole words with ZWNJ / madda / hamza-seat, i.e. the normaliser kept them
    for w in (f"می{ZWNJ}شود", "آگاهی", "مسئول"):
        assert w in tok.get_vocab(), w
    # config.json saying "bert" must not make AutoTokenizer swap in BERT's default normaliser
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    before, after, reloaded = _roundtrip_ids(tok, tmp_path, PERSIAN_WORDS)
    assert before == after
    assert tok.unk_token_id not in before
    assert reloaded.convert_ids_to_tokens(after)[1] == f"می{ZWNJ}شود"


def test_tiny_model_is_small_random_and_labelled():
    tok = build_tiny_tokenizer([PERSIAN_WORDS], vocab_size=200)
    model = load_model("tiny:3", LABELS, tok)
    assert model.config.num_hidden_layers == 3
    assert model.config.id2label == dict(enumerate(LABELS))
    assert model.config.vocab_size == len(tok)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000


def test_parsbert_standin_uses_real_tokenizer_and_round_trips(parsbert_tokenizer_dir, tmp_path):
    tok = load_tokenizer("parsbert-standin:2")
    assert len(tok) == 100_000 and tok.model_max_length == 512
    ids = tok(["كتاب"], is_split_into_words=True)["input_ids"]
    assert tok.unk_token_id in ids  # the real ParsBERT v1 behaviour is kept
    before, after, _ = _roundtrip_ids(tok, tmp_path, [*PERSIAN_WORDS, "123", "كتاب"])
    assert before == after
    model = load_model("parsbert-standin:2", LABELS, tok)
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 768
    assert model.config.id2label[1] == "B-LOC"


def _saved_tiny(tmp_path, labels=LABELS):
    tok = build_tiny_tokenizer([PERSIAN_WORDS], vocab_size=200)
    model = load_model("tiny", labels, tok)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return model, tok


def test_local_pickle_only_checkpoint_loads_through_the_restricted_unpickler(tmp_path):
    import torch

    model, _ = _saved_tiny(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = load_model(str(tmp_path), LABELS)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_pickle_that_needs_more_than_tensors_is_refused(tmp_path):
    import torch

    marker = tmp_path / "created-by-unpickling"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    model, _ = _saved_tiny(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save({**model.state_dict(), "x": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"refused.*restricted unpickler"):
        load_model(str(tmp_path), LABELS)
    with pytest.raises(ModelLoadError, match="refused"):
        load_for_inference(tmp_path, device="cpu")
    assert not marker.exists()


def test_a_folder_without_weights_or_tokenizer_is_named(tmp_path):
    _saved_tiny(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=f"no weights file in {tmp_path}"):
        load_for_inference(tmp_path, device="cpu")
    _saved_tiny(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="no tokenizer files"):
        load_for_inference(tmp_path, device="cpu")


def test_finetuning_a_classifier_with_unknown_labels_is_refused(tmp_path):
    _saved_tiny(tmp_path)
    with pytest.raises(ConfigError, match="does not know: B-ORG, I-ORG"):
        load_model(str(tmp_path), [*LABELS, "B-ORG", "I-ORG"])
    model = load_model(str(tmp_path), [*LABELS, "B-ORG", "I-ORG"], reinit_classifier=True)
    assert model.config.num_labels == 7


def test_load_for_inference_plain_dir(tmp_path):
    _saved_tiny(tmp_path)
    (tmp_path / "parsner.json").write_text(json.dumps({"max_length": 128, "stand_in": True}), encoding="utf-8")
    model, tok, normalizer, meta = load_for_inference(tmp_path, device="cpu")
    assert not model.training
    assert meta["max_length"] == 128 and meta["stride"] == 128 and meta["stand_in"] is True
    assert normalizer is None  # no normalizer.json saved here
    assert tok(["آگاهی"], is_split_into_words=True)["input_ids"][1] != tok.unk_token_id


@pytest.mark.slow
def test_tiny_vocabulary_is_the_same_in_every_process():
    """tokenizers' WordPieceTrainer breaks ties in hash order; ours must not (same seed -> same model)."""
    import subprocess
    import sys

    code = (
        "import hashlib, json; from parsner.inference.standins import build_tiny_tokenizer as b; "
        f"t = b([{PERSIAN_WORDS * 2 + ['تهران', 'ایران', 'ایرانی', 'تهرانی']!r}] * 3, 60); "
        "print(hashlib.sha256(json.dumps(sorted(t.get_vocab().items())).encode()).hexdigest())"
    )
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
               for _ in range(3)}
    assert len(digests) == 1


def test_truncated_weights_and_corrupt_meta_are_named(tmp_path):
    _saved_tiny(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"cannot load the model of .*(header|deserializ)"):
        load_for_inference(tmp_path, device="cpu")
    _saved_tiny(tmp_path)
    (tmp_path / "parsner.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"parsner\.json: not a valid parsner\.json"):
        load_for_inference(tmp_path, device="cpu")


def test_a_run_missing_its_normalizer_json_says_so_and_uses_the_named_preset(tmp_path, caplog):
    _saved_tiny(tmp_path)
    (tmp_path / "parsner.json").write_text(json.dumps({"normalizer": "parsbert"}), encoding="utf-8")
    _, _, normalizer, meta = load_for_inference(tmp_path, device="cpu")
    assert normalizer is not None and normalizer.normalize_text("كتاب 12") == "کتاب ۱۲"
    # logged as a warning of parsner.data.normalize (the CLI shows it on stderr; a library user decides)
    assert any(r.levelname == "WARNING" and "normalizer.json is missing" in r.getMessage() for r in caplog.records)
    assert meta["normalizer_used"].startswith("parsbert (preset")


def test_a_missing_relative_model_directory_is_not_sent_to_the_stand_ins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as err:
        load_for_inference("models/peyma", device="cpu")
    text = str(err.value)
    assert "no local directory of that name" in text and "for training only" in text
