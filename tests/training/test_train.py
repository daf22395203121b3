"""Training end to end on a tiny stand-in: run directory, determinism, bad input, interrupts and resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.train import (
    LABELS,
    final_metrics,
    make_sentences,
    run_cli,
    save_dataset,
    small_dataset,
    tiny_config,
)
from parsner.errors import ConfigError, InputError, ModelLoadError
from parsner.training.config import load_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def data(work) -> Path:
    return small_dataset(work / "data")


@pytest.fixture(scope="module")
def config(work, data) -> Path:
    return tiny_config(work / "tiny.yaml", data)


@pytest.fixture(scope="module")
def baseline(work, config) -> Path:
    """One uninterrupted run through the CLI (the reference for determinism and resume)."""
    out = work / "runs" / "baseline"
    res = run_cli(["train", "--config", str(config), "--out", str(out)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "stand-in" in res.stdout
    # one readable line per evaluation, not the Trainer's raw log dicts
    assert re.search(r"parsner train: epoch [\d.]+ \(step \d+\), loss [\d.]+, validation loss [\d.]+, "
                     r"validation F1 \(strict\) [\d.]+", res.stderr), res.stderr[-3000:]
    assert "'eval_loss'" not in res.stdout + res.stderr and "{'loss'" not in res.stdout + res.stderr
    return out


def test_run_directory_is_complete_and_loads_with_plain_transformers(baseline, data):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    names = {p.name for p in baseline.iterdir()}
    for f in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "normalizer.json",
              "parsner.json", "run_config.yaml", "train_log.jsonl", "metrics.json", "README.md"):
        assert f in names, f
    assert not (baseline.parent / "baseline.incomplete").exists()  # work dir removed at the end
    model = AutoModelForTokenClassification.from_pretrained(str(baseline))
    tok = AutoTokenizer.from_pretrained(str(baseline))
    assert model.config.id2label == dict(enumerate(LABELS))
    assert model.config.label2id["B-PER"] == LABELS.index("B-PER")
    ids = tok(["می\u200cشود"], is_split_into_words=True)["input_ids"]
    assert tok.unk_token_id not in ids  # the tiny vocabulary survived the save with ZWNJ intact
    meta = json.loads((baseline / "parsner.json").read_text(encoding="utf-8"))
    assert meta["stand_in"] is True and "NOT ParsBERT" in meta["stand_in_description"]
    assert (meta["max_length"], meta["stride"]) == (64, 16)
    metrics = json.loads((baseline / "metrics.json").read_text(encoding="utf-8"))
    m = metrics["metrics"]
    assert 0.0 <= m["f1_strict"] <= 1.0 and 0.0 <= m["f1_default"] <= 1.0
    assert m["f1_strict"] > 0.3  # the synthetic task is learnable: the run really trained
    assert metrics["encoding"]["train"]["sentences"] == 64
    card = (baseline / "README.md").read_text(encoding="utf-8")
    front = card.split("---")[1]
    import yaml

    fm = yaml.safe_load(front)
    assert fm["language"] == ["fa"] and fm["pipeline_tag"] == "token-classification"
    reported = fm["model-index"][0]["results"][0]["metrics"][0]["value"]
    assert reported == round(m["f1_strict"], 4)
    assert "WARNING" in card and "NOT ParsBERT" in card
    log = [json.loads(line) for line in (baseline / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_f1_strict" in r and "eval_f1_default" in r for r in log)
    assert all(r.get("eval_loss") is None or r["eval_loss"] == r["eval_loss"] for r in log)  # no NaN
    from parsner.data.normalize import PersianNormalizer

    assert PersianNormalizer.load(baseline).normalize_token("كتاب") == "کتاب"


def test_same_seed_same_metrics(baseline, config, work):
    from parsner.training.train import train

    cfg = load_config(config, overrides={"out": str(work / "runs" / "again")})
    result = train(cfg)
    assert {k: v for k, v in result.metrics.items() if "runtime" not in k and "per_second" not in k} \
        == final_metrics(baseline)


def test_refuses_to_overwrite(baseline, config):
    res = run_cli(["train", "--config", str(config), "--out", str(baseline)])
    assert res.returncode == 2 and "--overwrite" in res.stderr


def test_sigterm_midway_then_resume_gives_the_same_metrics(baseline, config, work):
    out = work / "runs" / "sigterm"
    res = run_cli(["train", "--config", str(config), "--out", str(out)], {"PARSNER_FAULT_INJECT": "SIGTERM:11"})
    assert res.returncode == 143, res.stderr[-2000:]
    assert not out.exists()  # nothing that looks complete
    incomplete = out.parent / "sigterm.incomplete"
    assert (incomplete / "checkpoints" / "checkpoint-11").is_dir()  # saved at the step it was stopped
    again = run_cli(["train", "--config", str(config), "--out", str(out)])
    assert again.returncode == 2 and "--resume" in again.stderr
    res = run_cli(["train", "--config", str(config), "--out", str(out), "--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert final_metrics(out) == final_metrics(baseline)


def test_sigkill_after_checkpoint_then_resume_gives_the_same_metrics(baseline, config, work):
    out = work / "runs" / "sigkill"
    # 8 steps per epoch: checkpoint-16 exists when the process dies at step 19
    res = run_cli(["train", "--config", str(config), "--out", str(out)], {"PARSNER_FAULT_INJECT": "SIGKILL:19"})
    assert res.returncode == -9
    incomplete = out.parent / "sigkill.incomplete"
    assert (incomplete / "checkpoints" / "checkpoint-16").is_dir()
    assert not (incomplete / "checkpoints" / "checkpoint-19").exists()
    assert not out.exists()
    res = run_cli(["train", "--config", str(config), "--out", str(out), "--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert final_metrics(out) == final_metrics(baseline)


def test_ctrl_c_saves_a_checkpoint_and_exits_130(config, work):
    out = work / "runs" / "sigint"
    res = run_cli(["train", "--config", str(config), "--out", str(out)], {"PARSNER_FAULT_INJECT": "SIGINT:5"})
    assert res.returncode == 130, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "--resume" in res.stderr
    assert (out.parent / "sigint.incomplete" / "checkpoints" / "checkpoint-5").is_dir()
    assert not out.exists()


def test_resume_with_a_different_config_is_refused(config, tmp_path):
    from parsner.training.config import dump_yaml
    from parsner.training.train import train

    out = tmp_path / "run"
    cfg = load_config(config, overrides={"out": str(out)})
    (tmp_path / "run.incomplete").mkdir()
    (tmp_path / "run.incomplete" / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    changed = load_config(config, overrides={"out": str(out)}, sets=["learning_rate=0.1"])
    with pytest.raises(ConfigError, match=r"differs from the interrupted run's .* learning_rate"):
        train(changed, resume=True)


# ------------------------------------------------------------------------------- bad input (no training)


def test_unknown_config_key_lists_the_valid_keys(tmp_path, data):
    cfg = tiny_config(tmp_path / "c.yaml", data, learnin_rate=0.1)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "learnin_rate" in str(info.value) and "learning_rate" in str(info.value)
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(None, sets=["batchsize=3"])


def test_config_types_are_checked(tmp_path, data):
    with pytest.raises(ConfigError, match="batch_size must be int"):
        load_config(tiny_config(tmp_path / "c.yaml", data, batch_size="big"))
    with pytest.raises(ConfigError, match="epochs must be > 0"):
        load_config(None, sets=["epochs=0"])
    with pytest.raises(ConfigError, match="precision must be one of"):
        load_config(None, sets=["precision=fp8"])
    cfg = load_config(tiny_config(tmp_path / "c.yaml", data), sets=["learning_rate=3e-5", "epochs=2"])
    assert cfg.learning_rate == 3e-5 and cfg.epochs == 2.0 and cfg.run_name == "c"


def test_empty_train_split_is_an_input_error(tmp_path, monkeypatch):
    from datasets import Dataset, DatasetDict

    import parsner.data.dataset
    from parsner.data.dataset import dataset_features
    from parsner.training.train import train

    # datasets cannot even reload an empty split from disk, so hand the trainer one in memory
    empty = Dataset.from_dict({k: [] for k in dataset_features(LABELS)}, features=dataset_features(LABELS))
    monkeypatch.setattr(parsner.data.dataset, "load_dataset_dir", lambda p: DatasetDict(train=empty, validation=empty))
    with pytest.raises(InputError, match="train split is empty"):
        train(load_config(None, overrides={"data": str(tmp_path), "out": str(tmp_path / "o")}))
    assert not (tmp_path / "o.incomplete").exists()


def test_hub_id_offline_fails_fast_via_cli(tmp_path, data):
    res = run_cli(["train", "--data", str(data), "--out", str(tmp_path / "o"),
                   "--model", "HooshvareLab/bert-fa-base-uncased"], timeout=120)
    assert res.returncode == 2
    assert "not available offline" in res.stderr and "--model tiny" in res.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.incomplete").exists()


def test_dataset_labels_unknown_to_the_model_are_refused(baseline, tmp_path):
    from parsner.training.train import train

    labels = [*LABELS, "B-DAT", "I-DAT"]
    rows = make_sentences(8, 4)
    rows[0] = (["۱۴۰۰", "تهران"], ["B-DAT", "B-LOC"])
    data = save_dataset(tmp_path / "d", {"train": rows, "validation": make_sentences(4, 5)}, labels)
    cfg = load_config(None, overrides={"data": str(data), "out": str(tmp_path / "o"), "model": str(baseline)})
    with pytest.raises(ConfigError, match="does not know: B-DAT, I-DAT"):
        train(cfg)
    assert not (tmp_path / "o.incomplete").exists()


def test_missing_local_model_dir(tmp_path, data):
    from parsner.training.train import train

    cfg = load_config(None, overrides={"data": str(data), "out": str(tmp_path / "o"), "model": "./nope/model"})
    with pytest.raises(ModelLoadError, match="does not exist"):
        train(cfg)
