"""Benchmark glue: eval/baselines.yaml, aggregation and the markdown table (no training here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsner.errors import ConfigError
from parsner.evaluation.benchmarks import (
    BENCHMARKS,
    aggregate,
    load_baselines,
    mean_std,
    published_rows,
    render_benchmark_md,
)
from parsner.workflows.benchmark import append_results_md


def _run(run: str, fold: str | None, seed: int, f1: float, strict: float) -> dict:
    return {"run": run, "fold": fold, "seed": seed,
            "default": {"precision": f1, "recall": f1, "f1": f1},
            "strict": {"precision": strict, "recall": strict, "f1": strict},
            "ci_default": [f1 - 0.01, f1 + 0.01], "train_seconds": 12.0}


def test_baselines_yaml_has_the_brief_numbers_with_sources() -> None:
    b = load_baselines()
    for name in BENCHMARKS:
        assert name in b["benchmarks"], name
    peyma = {r["system"]: r for r in b["benchmarks"]["peyma"]["results"]}
    f1s = sorted(float(r["f1"]) for r in peyma.values())
    assert f1s == sorted([93.40, 93.10, 86.64, 90.59, 84.00, 91.24, 91.39, 90.91])
    arman = b["benchmarks"]["arman-3fold"]["results"]
    assert sorted(float(r["f1"]) for r in arman) == [95.89, 98.79, 99.84]
    assert all("leaked" in r["flags"] for r in arman)  # every all-folds ARMAN number is flagged
    assert b["benchmarks"]["arman-fold1"]["results"][0]["f1_range"] == [80.06, 83.16]
    assert b["benchmarks"]["mixed"]["results"][0]["f1"] == 95.73
    for bench in b["benchmarks"].values():
        for row in bench["results"]:
            assert row["source"] in b["sources"]
            assert row["status"] in ("checked", "as-reported")


def test_bad_baselines_file(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    bad = "sources: {}\nbenchmarks:\n  peyma:\n    results:\n      - {system: X, f1: 1, source: nope}\n"
    f.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown source"):
        load_baselines(f)
    with pytest.raises(ConfigError, match="not found"):
        load_baselines(tmp_path / "missing.yaml")


def test_aggregate_over_seeds_and_folds() -> None:
    runs = [_run("fold1-seed1", "1", 1, 0.80, 0.78), _run("fold1-seed2", "1", 2, 0.82, 0.80),
            _run("fold2-seed1", "2", 1, 0.70, 0.69), _run("fold2-seed2", "2", 2, 0.72, 0.71)]
    agg = aggregate(runs)
    assert agg["n_runs"] == 4
    assert agg["default_f1_mean"] == pytest.approx(0.76)
    assert agg["default_f1_std"] == pytest.approx(mean_std([0.80, 0.82, 0.70, 0.72])[1])
    assert agg["per_fold"]["1"]["default"] == pytest.approx(0.81)
    assert agg["per_fold"]["2"]["strict"] == pytest.approx(0.70)
    assert mean_std([0.5]) == (0.5, 0.0)


def test_table_names_stand_in_and_flags_leakage() -> None:
    b = load_baselines()
    runs = [_run("fold1-seed1", "1", 1, 0.60, 0.58), _run("fold1-seed2", "1", 2, 0.64, 0.62)]
    md = render_benchmark_md("arman-fold1", runs, b, model="tiny", stand_in="tiny BERT with random weights",
                             command="parsner benchmark arman-fold1 --model tiny --seeds 2",
                             when="2025-01-01")
    assert "STAND-IN" in md and "tiny BERT with random weights" in md
    assert "| 62.00 ± 2.83 | 60.00 ± 2.83 | 2 seed(s) |" in md
    assert "80.06–83.16" in md
    leaked = [line for line in md.splitlines() if "99.84" in line]
    assert len(leaked) == 1 and "LEAKED" in leaked[0] and "(arman-3fold)" in leaked[0]
    assert "`parsner benchmark arman-fold1 --model tiny --seeds 2`" in md
    assert "| fold1-seed2 | 1 | 2 | 64.00 | 62.00 | 63.00 – 65.00 | 12 |" in md
    real = render_benchmark_md("peyma", runs[:1], b, model="HooshvareLab/bert-fa-base-uncased", stand_in=None,
                               command="c", when="d")
    assert "STAND-IN" not in real and "| 60.00 | 58.00 | 1 seed(s) |" in real
    assert "93.40" in real and "as reported by the project's brief" in real


def test_published_rows_see_also() -> None:
    b = load_baselines()
    rows = published_rows(b, "arman-3fold")
    assert {r["benchmark"] for r in rows} == {"arman-3fold", "arman-fold1"}
    assert published_rows(b, "no-such") == []


def test_append_results(tmp_path: Path) -> None:
    f = tmp_path / "RESULTS.md"
    append_results_md(f, "## one\n")
    append_results_md(f, "## two\n")
    assert f.read_text(encoding="utf-8") == "# ParsNER results\n\n## one\n\n## two\n"


@pytest.mark.slow
def test_benchmark_sample_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """build -> train (tiny stand-in, 1 epoch, 20 sentences) -> eval, two seeds, via the CLI (~1 min)."""
    import json

    from parsner.cli import main

    out = tmp_path / "bench"
    results_md = tmp_path / "RESULTS.md"
    args = ["benchmark", "sample", "--seeds", "2", "--epochs", "1", "--max-train-samples", "20",
            "--bootstrap", "50", "--out", str(out)]
    assert main([*args, "--append-results", str(results_md)]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["seed"] for r in res["runs"]] == [1, 2]
    assert res["stand_in"] and "STAND-IN" in printed
    for r in res["runs"]:
        ev = Path(r["eval_dir"])
        metrics = json.loads((ev / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["default"]["f1"] == r["default"]["f1"]
        assert metrics["source"]["stand_in"]
        assert (ev / "curves.png").is_file() and "## Training curves" in (ev / "report.md").read_text("utf-8")
    md = (out / "benchmark.md").read_text(encoding="utf-8")
    assert md in results_md.read_text(encoding="utf-8")
    assert "| main-seed2 | – | 2 |" in md
    # resume reuses everything (no retraining), an existing OUT is refused otherwise
    stamp = (out / "runs" / "main-seed1" / "model.safetensors").stat().st_mtime_ns
    assert main([*args, "--resume"]) == 0
    assert "reusing" in capsys.readouterr().err
    assert (out / "runs" / "main-seed1" / "model.safetensors").stat().st_mtime_ns == stamp
    again = json.loads((out / "results.json").read_text(encoding="utf-8"))["runs"][1]
    assert again["default"] == res["runs"][1]["default"]
    assert again["train_seconds"] > 0
    assert main(args) == 2
