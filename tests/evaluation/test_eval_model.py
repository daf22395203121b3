"""End-to-end `parsner eval --model --data`: a tiny random-weight model saved like a run, on the sample data.

The model is untrained (random but seeded), so the scores are arbitrary; what is checked is that the
harness predicts one tag per word through the Tagger, scores exactly what it wrote to predictions.conll,
names the stand-in, and that the CLI writes every output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsner.cli import main
from parsner.errors import ConfigError
from parsner.evaluation.evaluate import evaluate_model, read_predictions, split_tags
from parsner.evaluation.metrics import score


@pytest.fixture(scope="module")
def sample_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from parsner.data.corpora import build_corpus

    out = tmp_path_factory.mktemp("evalmodel") / "sample-ds"
    build_corpus("sample", out, log=None)
    return out


@pytest.fixture(scope="module")
def random_run(tmp_path_factory: pytest.TempPathFactory, sample_dataset: Path) -> Path:
    import torch

    from parsner.data.dataset import load_dataset_dir
    from parsner.inference.standins import build_tiny_model, build_tiny_tokenizer

    dd = load_dataset_dir(sample_dataset)
    labels = dd["train"].features["ner_tags"].feature.names
    tok = build_tiny_tokenizer([list(t) for t in dd["train"]["tokens"]], vocab_size=600)
    torch.manual_seed(0)
    model = build_tiny_model(len(tok), labels, pad_token_id=tok.pad_token_id, layers=1, hidden=32, heads=2,
                             intermediate=64, max_positions=64)
    run = tmp_path_factory.mktemp("evalmodel") / "run"
    run.mkdir()
    model.save_pretrained(run)
    tok.save_pretrained(run)
    # a short window forces long sample sentences through the sliding windows
    meta = {"max_length": 32, "stride": 8, "stand_in": "tiny BERT with random weights (test)"}
    (run / "parsner.json").write_text(json.dumps(meta), encoding="utf-8")
    return run


def test_evaluate_model_end_to_end(random_run: Path, sample_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ev"
    res = evaluate_model(random_run, sample_dataset, "test", out=out, batch_size=4, n_bootstrap=100,
                         device="cpu")
    gold = split_tags(sample_dataset, "test")
    m = res.metrics
    assert m["n_sentences"] == len(gold.tokens) > 0
    assert m["n_tokens"] == sum(len(t) for t in gold.tokens)
    assert m["n_gold_entities"] > 0
    assert m["source"]["split"] == "test" and m["source"]["stand_in"].startswith("tiny BERT")
    back = read_predictions(out / "predictions.conll")
    assert back.tokens == gold.tokens and back.gold == gold.gold
    assert [len(p) for p in back.pred] == [len(t) for t in gold.tokens]
    rescored = score(back.gold, back.pred)
    assert rescored["default"] == m["default"] and rescored["strict"] == m["strict"]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "stand-in model" in report and "NOT those of a real" in report
    for name in ("metrics.json", "analysis.json", "confusion.png", "report.md", "threshold.png", "reliability.png"):
        assert (out / name).is_file()


def test_eval_reports_scores_by_threshold_and_calibration(random_run: Path, sample_dataset: Path,
                                                          tmp_path: Path) -> None:
    """metrics.json and report.md hold the threshold table and the ECE with its reliability table; the two plots are
    written beside confusion.png, and not with --no-plots."""
    from parsner.evaluation.calibration import THRESHOLDS

    out = tmp_path / "ev"
    res = evaluate_model(random_run, sample_dataset, "test", out=out, batch_size=8, n_bootstrap=0, device="cpu")
    conf = res.metrics["confidence"]
    assert conf["score"].startswith("raw") and conf["entities"] > 0
    assert conf["gold_entities"] == res.metrics["n_gold_entities"]
    assert [r["threshold"] for r in conf["thresholds"]] == list(THRESHOLDS)
    first = conf["thresholds"][0]  # threshold 0 keeps every entity: the strict scores
    assert first["entities"] == conf["entities"]
    assert first["f1"] == pytest.approx(res.metrics["strict"]["f1"], abs=1e-9)
    assert [r["entities"] for r in conf["thresholds"]] == sorted((r["entities"] for r in conf["thresholds"]),
                                                                reverse=True)
    assert 0.0 <= conf["ece"] <= 1.0 and len(conf["reliability"]) == 10
    assert sum(r["entities"] for r in conf["reliability"]) == conf["entities"]
    on_disk = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["confidence"]
    assert on_disk["ece"] == pytest.approx(conf["ece"])
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "by threshold" in report and "Expected calibration error" in report
    assert "(threshold.png)" in report and "(reliability.png)" in report
    assert (out / "threshold.png").stat().st_size > 1000 and (out / "reliability.png").stat().st_size > 1000
    code = main(["eval", "--model", str(random_run), "--data", str(sample_dataset), "--bootstrap", "0",
                 "--device", "cpu", "--quiet", "--no-plots", "--out", str(tmp_path / "np")])
    assert code == 0
    assert not list((tmp_path / "np").glob("*.png"))
    assert "threshold.png" not in (tmp_path / "np" / "report.md").read_text(encoding="utf-8")
    assert "confidence" in json.loads((tmp_path / "np" / "metrics.json").read_text(encoding="utf-8"))


def test_eval_cli_model(random_run: Path, sample_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--model", str(random_run), "--data", str(sample_dataset), "--split", "validation",
                 "--batch-size", "8", "--bootstrap", "50", "--device", "cpu", "--quiet"])
    assert code == 0
    out = random_run / "eval-validation"
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["source"]["split"] == "validation"
    assert "wrote" in capsys.readouterr().out
    assert main(["eval", "--model", str(random_run), "--data", str(sample_dataset), "--split", "nope"]) == 2
    assert "no split 'nope'" in capsys.readouterr().err


def test_missing_split_and_model(random_run: Path, sample_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="available"):
        split_tags(sample_dataset, "dev")
    assert main(["eval", "--model", str(tmp_path / "none"), "--data", str(sample_dataset),
                 "--out", str(tmp_path / "o")]) == 2


def test_cross_schema_model_is_noted(sample_dataset: Path, tmp_path: Path) -> None:
    """A model without some gold types (e.g. trained on another corpus): scored, and the report says why."""
    import torch

    from parsner.data.dataset import load_dataset_dir
    from parsner.inference.standins import build_tiny_model, build_tiny_tokenizer

    dd = load_dataset_dir(sample_dataset)
    tok = build_tiny_tokenizer([list(t) for t in dd["train"]["tokens"]], vocab_size=300)
    torch.manual_seed(1)
    model = build_tiny_model(len(tok), ["O", "B-PER", "I-PER"], pad_token_id=tok.pad_token_id, layers=1,
                             hidden=16, heads=2, intermediate=32, max_positions=128)
    run = tmp_path / "per-only"
    model.save_pretrained(run)
    tok.save_pretrained(run)
    res = evaluate_model(run, sample_dataset, "test", out=None, n_bootstrap=0, device="cpu")
    note = res.metrics["source"]["notes"][0]
    assert "no label for the gold type(s)" in note and "LOC" in note and "PER," not in note
    assert "note: the model has no label" in res.report
    loc = res.metrics["default"]["per_type"]["LOC"]
    assert loc["support"] > 0 and loc["recall"] == 0.0  # unpredictable type: all missed


def test_eval_of_a_freshly_trained_tiny_model(sample_dataset: Path, tmp_path: Path) -> None:
    """train (tiny stand-in, 1 epoch, 16 sentences) -> eval: the run's own files feed the report."""
    from parsner.training.train import run_training

    run = tmp_path / "trained"
    run_training(model="tiny", data=sample_dataset, out=run, seed=3, epochs=1, max_train_samples=16,
                 overrides=["progress=false", "tiny_layers=1", "tiny_hidden=32", "tiny_intermediate=64",
                            "tiny_vocab_size=500", "max_length=64", "stride=16", "logging_steps=1"])
    res = evaluate_model(run, sample_dataset, "test", out=tmp_path / "ev", n_bootstrap=50, device="cpu")
    assert "random init" in res.metrics["source"]["stand_in"]  # from the run's parsner.json
    assert (tmp_path / "ev" / "curves.png").is_file()
    assert "## Training curves" in (tmp_path / "ev" / "report.md").read_text(encoding="utf-8")
    assert res.metrics["n_tokens"] == sum(len(t) for t in split_tags(sample_dataset, "test").tokens)
    # the entity-score calibration, fitted on the validation split after training, travels with the run
    record = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["calibration"]
    if record["file"] is not None:
        assert (run / "calibration.json").is_file() and record["split"] == "validation"
        assert record["ece_fitted"] <= record["ece_raw"]
        assert res.metrics["confidence"]["score"] == "calibrated"
    else:
        assert "raw" in record["why"] and not (run / "calibration.json").exists()
