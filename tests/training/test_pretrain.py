"""parsner pretrain on tiny models: whole-word masking, the output base model, resume, the test guard, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.train import dataset_with_test, make_sentences, run_cli

TEST_SENTENCE = ["حمید", "رحمانی", "دیروز", "با", "سازمان", "ملل", "دیدار", "کرد"]
TINY = ["--set", "tiny_layers=1", "--set", "tiny_hidden=32", "--set", "tiny_heads=2", "--set", "tiny_intermediate=64",
        "--set", "tiny_vocab_size=400", "--set", "batch_size=8", "--set", "logging_steps=1", "--set", "save_steps=3",
        "--set", "progress=false", "--set", "num_threads=1", "--set", "learning_rate=1e-3"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pretrain")


@pytest.fixture(scope="module")
def data(work) -> Path:
    return dataset_with_test(work / "data", TEST_SENTENCE)


@pytest.fixture(scope="module")
def text(work) -> Path:
    path = work / "news.txt"
    lines = [" ".join(t) + " ." for t, _ in make_sentences(60, 5)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pretrain_args(text: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--model", "tiny", "--text", str(text), str(data), "--out", str(out), "--max-steps", "8",
            *TINY, *extra]


@pytest.fixture(scope="module")
def pretrained(work, text, data) -> Path:
    out = work / "base"
    res = run_cli(pretrain_args(text, data, out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_whole_word_masking_covers_whole_words():
    from parsner.data import align
    from parsner.inference.standins import build_tiny_tokenizer
    from parsner.training.pretrain import WholeWordMasker

    sentences = [["کتاب‌هایشان", "را", "خوانده‌اند", "و", "دانشگاه‌های", "تهران", "بسته‌اند"] * 3] * 4
    tok = build_tiny_tokenizer(sentences, vocab_size=1)  # characters only: every word is many pieces
    enc = align.encode_words(sentences, tok, None, max_length=128, stride=16)
    masker = WholeWordMasker(tok, 0.3, seed=3)
    split_words = 0
    for k, win in enumerate(enc.windows):
        for epoch in range(5):
            ex = masker(win.input_ids, win.word_ids, epoch, k)
            by_word: dict[int, set[bool]] = {}
            for pos, w in enumerate(win.word_ids):
                if w is None:
                    assert ex["labels"][pos] == -100  # special tokens are never predicted
                    continue
                by_word.setdefault(w, set()).add(ex["labels"][pos] != -100)
            assert all(len(v) == 1 for v in by_word.values()), "a word was masked only in part"
            masked = [w for w, v in by_word.items() if True in v]
            assert masked, "nothing masked"
            for pos, w in enumerate(win.word_ids):
                if w in masked and ex["labels"][pos] != win.input_ids[pos]:
                    raise AssertionError("labels must be the original sub-words")
            split_words += sum(1 for w in masked if win.word_ids.count(w) > 1)
    assert split_words > 0  # multi-piece words were masked (and whole)
    # decided by (seed, epoch, window) only
    a = masker(enc.windows[0].input_ids, enc.windows[0].word_ids, 2, 0)
    b = masker(enc.windows[0].input_ids, enc.windows[0].word_ids, 2, 0)
    c = masker(enc.windows[0].input_ids, enc.windows[0].word_ids, 3, 0)
    assert a == b and a != c


@pytest.mark.slow
def test_pretrained_base_is_complete_and_fine_tunes(pretrained, data, work):
    names = {p.name for p in pretrained.iterdir()}
    for f in ("model.safetensors", "config.json", "tokenizer.json", "normalizer.json", "parsner.json",
              "pretrain_config.yaml", "metrics.json", "train_log.jsonl", "README.md"):
        assert f in names, f
    meta = json.loads((pretrained / "parsner.json").read_text("utf-8"))
    assert meta["kind"] == "pretrained-base" and meta["whole_word_masking"] is True
    assert meta["license"]["level"] == "unknown"  # text given by the user
    info = json.loads((pretrained / "metrics.json").read_text("utf-8"))
    assert info["global_step"] == 8 and info["test_guard"]["overlapping_sentences"] == 0
    assert [s["kind"] for s in info["text"]] == ["text", "dataset (train+validation; test never read)"]
    assert not (pretrained.parent / "base.incomplete").exists()
    out = work / "ft"
    res = run_cli(["train", "--model", str(pretrained), "--data", str(data), "--out", str(out), "--epochs", "1",
                   "--set", "progress=false", "--set", "num_threads=1", "--set", "batch_size=8"])
    assert res.returncode == 0, res.stderr[-3000:]
    sources = json.loads((out / "parsner.json").read_text("utf-8"))["license"]["sources"]
    assert any(s["name"] == "the text `news.txt`" for s in sources)  # the base model's text carries over
    from safetensors.torch import load_file

    base, tuned = load_file(str(pretrained / "model.safetensors")), load_file(str(out / "model.safetensors"))
    key = "bert.embeddings.word_embeddings.weight"
    assert base[key].shape == tuned[key].shape  # the fine-tuned model starts from the pretrained encoder


@pytest.mark.slow
def test_resume_after_sigterm_gives_identical_weights(pretrained, text, data, work):
    from safetensors.torch import load_file

    out = work / "interrupted"
    res = run_cli(pretrain_args(text, data, out), env_extra={"PARSNER_FAULT_INJECT": "SIGTERM:4"})
    assert res.returncode == 143, res.stderr[-3000:]
    assert not out.exists() and (work / "interrupted.incomplete" / "checkpoints" / "checkpoint-4").is_dir()
    res = run_cli([*pretrain_args(text, data, out), "--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = load_file(str(pretrained / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    info_a = json.loads((pretrained / "metrics.json").read_text("utf-8"))["metrics"]
    info_b = json.loads((out / "metrics.json").read_text("utf-8"))["metrics"]
    assert info_a["heldout_mlm_loss"] == info_b["heldout_mlm_loss"]


@pytest.mark.slow
def test_divergence_stops_like_training_and_keeps_the_last_checkpoint(text, data, work):
    """Pre-training shares the job runner's divergence rule: exit 2 naming the step, the last good checkpoint kept."""
    out = work / "diverged"
    res = run_cli(pretrain_args(text, data, out), env_extra={"PARSNER_FAULT_INJECT": "NAN:4"})
    assert res.returncode == 2, res.stderr[-3000:]
    assert "diverged at optimiser step 5" in res.stderr and "checkpoint-3" in res.stderr, res.stderr[-3000:]
    assert not out.exists()
    assert sorted(p.name for p in (work / "diverged.incomplete" / "checkpoints").iterdir()) == ["checkpoint-3"]


@pytest.mark.slow
def test_test_overlap_guard_fires(text, data, work):
    leaky = work / "leaky.txt"
    leaky.write_text(text.read_text("utf-8") + "خبر: " + " ".join(TEST_SENTENCE) + " .\n", encoding="utf-8")
    out = work / "leaky"
    res = run_cli(pretrain_args(leaky, data, out))
    assert res.returncode == 2
    assert "contain a test sentence" in res.stderr and f"{leaky}:61" in res.stderr
    assert not out.exists() and not (work / "leaky.incomplete").exists()
    # a guard given on its own (the text not being the dataset) fires too
    res = run_cli(["pretrain", "--model", "tiny", "--text", str(leaky), "--guard", str(data), "--out", str(out),
                   "--max-steps", "2", *TINY])
    assert res.returncode == 2 and "contain a test sentence" in res.stderr
    res = run_cli([*pretrain_args(leaky, data, out), "--drop-test-overlap", "--max-steps", "2"])
    assert res.returncode == 0, res.stderr[-3000:]
    guard = json.loads((out / "metrics.json").read_text("utf-8"))["test_guard"]
    assert guard["mode"] == "drop" and guard["overlapping_sentences"] == 1
    res = run_cli([*pretrain_args(leaky, data, work / "leaky2"), "--allow-test-overlap", "--max-steps", "2"])
    assert res.returncode == 0 and "KEPT" in res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--text", "/nonexistent/x.txt"], "does not exist"),
        (["--text", "{tmp}"], "not a dataset"),
        (["--text", "{text}", "--set", "mlm_probability=2"], "mlm_probability"),
        (["--text", "{text}", "--set", "bogus=1"], "unknown config key"),
        ([], "no text"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_message(args, needle, text, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)).replace("{text}", str(text)) for a in args]
    res = run_cli(["pretrain", "--model", "tiny", "--out", str(tmp_path / "o"), *args, *TINY])
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_jsonl_and_corpus_text(tmp_path):
    from parsner.data.pretext import read_texts

    jl = tmp_path / "t.jsonl"
    jl.write_text('{"text": "علی به تهران رفت. او برگشت."}\n{"tokens": ["مريم", "آمد"]}\n', encoding="utf-8")
    conll = tmp_path / "c.txt"
    conll.write_text("علی B-PER\nآمد O\n\nرضا B-PER\nرفت O\n", encoding="utf-8")
    plain = tmp_path / "p.txt"
    plain.write_text("علی آمد\nرضا رفت\n", encoding="utf-8")
    corpus = read_texts([str(jl), str(conll), str(plain)], lambda w: w.replace("ي", "ی"))
    assert corpus.sentences == [["علی", "به", "تهران", "رفت", "."], ["او", "برگشت", "."], ["مریم", "آمد"],
                                ["علی", "آمد"], ["رضا", "رفت"], ["علی", "آمد"], ["رضا", "رفت"]]
    assert [s["kind"] for s in corpus.sources] == ["jsonl", "corpus", "text"]


@pytest.mark.slow
def test_parsbert_shaped_base_and_local_dir_continue(parsbert_tokenizer_dir, pretrained, text, data, work):
    """A ParsBERT-shaped model (real tokenizer and config, 1 layer) and an earlier output both pre-train further."""
    out = work / "standin"
    res = run_cli(["pretrain", "--model", "parsbert-standin:1", "--text", str(text), "--out", str(out),
                   "--max-steps", "2", "--set", "batch_size=4", "--set", "progress=false",
                   "--set", "validation_fraction=0"])
    assert res.returncode == 0, res.stderr[-3000:]
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(out))
    assert config.num_hidden_layers == 1 and config.architectures == ["BertForMaskedLM"]
    assert "not checked for test sentences" in res.stderr  # no guard given: said, not silent
    res = run_cli(["pretrain", "--model", str(pretrained), "--text", str(text), "--out", str(work / "again"),
                   "--max-steps", "2", "--set", "batch_size=4", "--set", "progress=false"])
    assert res.returncode == 0, res.stderr[-3000:]


def test_job_configs_declare_every_key_with_its_rules():
    """Pre-training and distillation keys carry help and bounds like the training config's, from one machinery."""
    import dataclasses

    from parsner.errors import ConfigError
    from parsner.training import config
    from parsner.training.distill import DistillConfig, load_distill_config
    from parsner.training.pretrain import PretrainConfig, load_pretrain_config

    for cls in (config.RunConfig, PretrainConfig, DistillConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
    assert config.choices(DistillConfig, "test_overlap") == ("refuse", "report", "drop")
    assert config.choices(PretrainConfig, "lr_scheduler") == config.choices(config.RunConfig, "lr_scheduler")
    needed = {"teacher": "t", "data": "d"}
    for key, bad, needle in (("alpha", "1.5", "alpha must be <= 1"), ("temperature", "0", "temperature must be > 0"),
                             ("text_format", "xml", "text_format must be one of auto, text, jsonl, corpus")):
        with pytest.raises(ConfigError, match=needle):
            load_distill_config(None, needed, [f"{key}={bad}"])
    with pytest.raises(ConfigError, match="stride"):
        load_pretrain_config(None, {"text": ["t"]}, ["stride=200", "max_length=128"])
    assert load_distill_config(None, needed, ["alpha=1"]).alpha == 1.0  # the bound itself is allowed


def test_resume_compares_the_saved_config_as_data(tmp_path):
    """A work folder saved with its keys in another order (an earlier version) resumes; a changed value does not."""
    import yaml

    from parsner.errors import ConfigError
    from parsner.training.checkpoints import JOB_CONFIG_FILE, JOB_FINGERPRINT_FILE, check_saved_files
    from parsner.training.jobs import RunDirs, start_work

    work = tmp_path / "work"
    config_text = yaml.safe_dump({"epochs": 2.0, "seed": 42, "tiny_layers": 2}, sort_keys=False)
    files = {JOB_CONFIG_FILE: config_text, JOB_FINGERPRINT_FILE: '{"text": ["a.txt"], "sha256": "00000000"}'}
    start_work(RunDirs(tmp_path / "out", work, None), files)
    reordered = yaml.safe_dump({"tiny_layers": 2, "seed": 42, "epochs": 2.0}, sort_keys=False)
    (work / JOB_CONFIG_FILE).write_text(reordered, encoding="utf-8")
    check_saved_files(work, files)
    changed = yaml.safe_dump({"epochs": 3.0, "seed": 42, "tiny_layers": 2}, sort_keys=False)
    with pytest.raises(ConfigError, match="the config differ"):
        check_saved_files(work, {**files, JOB_CONFIG_FILE: changed})
