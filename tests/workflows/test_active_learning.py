"""The active-learning simulation (parsner.workflows.active_learning): the summary's arithmetic on hand-made points,
the settings checks, and small end-to-end runs with the feature CRF on a synthetic dataset (resume included)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

from helpers.train import make_sentences, save_dataset
from parsner.errors import ConfigError, InputError
from parsner.workflows import active_learning as al

# ------------------------------------------------------------------------------------------------ summary math


def _p(strategy: str, seed: int, size: int, f1: float, tokens: int) -> dict[str, Any]:
    return {"strategy": strategy, "seed": seed, "size": size, "f1": f1, "tokens": tokens, "added": [], "seconds": 1}


POINTS = [
    _p("random", 1, 100, 0.5, 1000), _p("random", 1, 200, 0.7, 2000), _p("random", 1, 300, 0.9, 3000),
    _p("random", 2, 100, 0.6, 1000), _p("random", 2, 200, 0.8, 2100), _p("random", 2, 300, 0.85, 3200),
    _p("uncertainty", 1, 100, 0.5, 1000), _p("uncertainty", 1, 200, 0.9, 2600),
    _p("uncertainty", 2, 100, 0.85, 1000), _p("uncertainty", 2, 200, 0.9, 2400),
    _p("diverse", 1, 100, 0.5, 1000), _p("diverse", 1, 200, 0.6, 2000),
]


def test_to_target_interpolates_at_the_first_crossing() -> None:
    curve = [_p("random", 1, 100, 0.5, 1000), _p("random", 1, 200, 0.7, 2000), _p("random", 1, 300, 0.9, 3000),
             _p("random", 1, 400, 0.7, 4000), _p("random", 1, 500, 0.95, 5000)]
    assert al.to_target(curve, 0.8) == pytest.approx((250.0, 2500.0))
    assert al.to_target(curve, 0.4) == (100.0, 1000.0)  # the first point already reaches it
    assert al.to_target(curve, 0.99) == (None, None)


def test_summary_means_savings_and_t_intervals() -> None:
    s = al.summarise(POINTS, full_f1=0.84, target=0.8)
    assert list(s["learning_curves"]) == ["random", "uncertainty", "diverse"]
    row = s["learning_curves"]["random"][0]
    assert (row["size"], row["n"]) == (100, 2)
    assert row["mean"] == pytest.approx(0.55) and row["sd"] == pytest.approx(math.sqrt(0.005))
    assert s["learning_curves"]["diverse"][0]["sd"] is None  # one seed
    rnd, unc, div = (s["to_target"][k] for k in ("random", "uncertainty", "diverse"))
    assert rnd["per_seed"]["1"]["sentences"] == pytest.approx(250)
    assert rnd["per_seed"]["2"]["sentences"] == pytest.approx(200)  # reached exactly at a point
    assert rnd["sentences"]["mean"] == pytest.approx(225) and rnd["saving"]["n"] == 0
    # uncertainty: 175 (interpolated: 100 + 0.75 x 100) and 100 (first point), paired savings 0.3 and 0.5
    assert unc["per_seed"]["1"]["sentences"] == pytest.approx(175)
    assert unc["per_seed"]["1"]["words"] == pytest.approx(2200)  # 1000 + 0.75 x 1600
    assert [unc["per_seed"][k]["saving"] for k in ("1", "2")] == pytest.approx([0.3, 0.5])
    assert [unc["per_seed"][k]["word_saving"] for k in ("1", "2")] == pytest.approx([1 - 2200 / 2500, 1 - 1000 / 2100])
    saving = unc["saving"]
    half = 12.706 * math.sqrt(0.02) / math.sqrt(2)  # t(0.975, df 1) x sd / sqrt(n)
    assert saving["mean"] == pytest.approx(0.4) and saving["ci"] == pytest.approx([0.4 - half, 0.4 + half])
    assert unc["per_seed"]["1"]["words_per_picked_sentence"] == pytest.approx(16)  # (2600 - 1000) / 100
    assert (div["reached"], div["seeds"], div["sentences"]["mean"], div["saving"]["mean"]) == (0, 1, None, None)


def test_t_quantiles_and_intervals() -> None:
    assert al.t_quantile(1) == 12.706 and al.t_quantile(2) == 4.303 and al.t_quantile(30) == 2.042
    assert al.t_quantile(60) == pytest.approx(2.000, abs=2e-3) and al.t_quantile(10_000) == pytest.approx(1.96, 1e-3)
    stat = al.mean_ci([1.0, 2.0, 3.0])
    assert stat["mean"] == 2.0 and stat["sd"] == 1.0
    assert stat["ci"] == pytest.approx([2 - 4.303 / math.sqrt(3), 2 + 4.303 / math.sqrt(3)])
    assert al.mean_ci([5.0])["ci"] is None and al.mean_ci([])["mean"] is None


def test_a_curve_stops_the_given_number_of_points_after_the_target() -> None:
    assert not al._stopped([0.5, 0.9], 0.8, 2)
    assert al._stopped([0.5, 0.9, 0.7, 0.85], 0.8, 2)
    assert not al._stopped([0.5, 0.9, 0.7, 0.85], 0.8, 0)
    assert not al._stopped([0.5, 0.6, 0.7], 0.8, 1)


# ------------------------------------------------------------------------------------------------ fixtures

needs_crf = pytest.mark.skipif(importlib.util.find_spec("pycrfsuite") is None,
                               reason="the feature CRF needs python-crfsuite: pip install 'parsner[crf]'")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("al") / "data"
    return save_dataset(path, {"train": make_sentences(120, 1), "test": make_sentences(40, 3)})


def _config(data: Path, **change: Any) -> al.SimulationConfig:
    settings = {"data": data, "strategies": ("random", "uncertainty", "diverse"), "seeds": (1, 2), "seed_size": 20,
                "sizes": (20, 40, 60, 80), "max_iterations": 10, "stop_after_target": 0}
    return al.SimulationConfig(**{**settings, **change})


# ------------------------------------------------------------------------------------------------ settings


@pytest.mark.parametrize(("change", "match"), [
    ({"strategies": ("random", "best")}, "unknown strategy 'best'"),
    ({"strategies": ()}, "at least one"),
    ({"sizes": (20, 60, 40)}, "does not increase"),
    ({"sizes": (10, 40)}, "below the seed set's 20"),
    ({"sizes": (20,)}, "at least one size above"),
    ({"seeds": ()}, "at least one seed"),
    ({"max_iterations": 0}, "max_iterations"),
    ({"workers": 0}, "workers"),
    ({"target_share": 1.5}, "target_share"),
])
def test_bad_settings_are_refused_before_any_work(change: dict[str, Any], match: str, tmp_path: Path) -> None:
    cfg = al.SimulationConfig(**{"data": tmp_path / "missing", "seed_size": 20, "sizes": (20, 40), **change})
    with pytest.raises(ConfigError, match=match):
        al.run_simulation(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_missing_dataset_a_too_small_pool_or_a_foreign_out_folder_is_refused(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such dataset folder"):
        al.run_simulation(_config(tmp_path / "missing"), tmp_path / "out")
    with pytest.raises(InputError, match="no test split"):
        al.run_simulation(_config(save_dataset(tmp_path / "notest", {"train": make_sentences(30, 1)})),
                          tmp_path / "out")
    with pytest.raises(ConfigError, match=r"500 is more than the pool's 120 sentences"):
        al.run_simulation(_config(dataset, sizes=(20, 500)), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="not an active-learning folder"):
        al.run_simulation(_config(dataset), foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(ConfigError, match="outside the dataset"):
        al.run_simulation(_config(dataset), dataset / "al")


def test_a_second_simulation_into_the_same_folder_is_refused_while_one_runs(dataset: Path, tmp_path: Path) -> None:
    """Two runs on one folder would append the same points twice: the second is refused, naming the first."""
    from parsner.runlock import RunLock, RunLocked

    with RunLock(tmp_path / "out", what="an active-learning simulation"):
        with pytest.raises(RunLocked, match="active-learning simulation"):
            al.run_simulation(_config(dataset), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_command_line_options_become_the_config(tmp_path: Path) -> None:
    from parsner.cli import active_learning as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["active-learning", "--data", "d", "--out", "o", "--strategies", "random,diverse",
                              "--seeds", "2", "--sizes", "200,400", "--stop-after-target", "0"])
    cfg = cli.config_from_args(args)
    assert (cfg.strategies, cfg.seeds, cfg.sizes, cfg.stop_after_target) == (("random", "diverse"), (1, 2),
                                                                              (200, 400), 0)
    args = parser.parse_args(["active-learning", "--data", "d", "--out", "o", "--sizes", "200,x"])
    with pytest.raises(ConfigError, match="--sizes '200,x': expected whole numbers"):
        cli.config_from_args(args)
    args = parser.parse_args(["active-learning", "--data", "d", "--out", "o", "--seeds", "0"])
    with pytest.raises(ConfigError, match="--seeds 0"):
        cli.config_from_args(args)


def test_the_command_exits_2_on_a_bad_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from parsner.cli import COMMAND_MODULES, main

    if "active_learning" not in COMMAND_MODULES:
        pytest.skip("the active-learning command is not registered in parsner.cli yet")
    code = main(["active-learning", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--sizes", "400,200"])
    assert code == 2
    assert "does not increase" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ end to end

REAL_FIT = al.fit_model


class _CountingFit:
    """fit_model, counted; raises KeyboardInterrupt (Ctrl-C) at call ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = 0, stop_at

    def __call__(self, *args: Any) -> float:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return REAL_FIT(*args)


def _by_key(out: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    return {(p["strategy"], p["seed"], p["size"]): p for p in al.read_points(out)}


@pytest.mark.slow
@needs_crf
def test_a_small_simulation_writes_its_outputs(dataset: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    result = al.run_simulation(_config(dataset), out)
    points = al.read_points(out)
    assert len(points) == 3 * 2 * 4
    curves: dict[tuple[str, int], list[int]] = {}
    for p in sorted(points, key=lambda p: p["size"]):
        added = curves.setdefault((p["strategy"], p["seed"]), [])
        added += p["added"]
        assert len(added) == len(set(added)) == p["size"] and 0 <= p["f1"] <= 1
    for seed in (1, 2):  # paired: every strategy starts from the same seed set at a seed
        firsts = {tuple(curves[(s, seed)][:20]) for s in ("random", "uncertainty", "diverse")}
        assert len(firsts) == 1
    assert curves[("random", 1)][:20] != curves[("random", 2)][:20]
    doc = json.loads((out / al.RESULTS_FILE).read_text(encoding="utf-8"))
    assert doc["full_f1"] == result.full_f1 > 0 and doc["target"] == pytest.approx(0.95 * result.full_f1)
    assert set(doc["summary"]["to_target"]) == {"random", "uncertainty", "diverse"}
    report = (out / al.REPORT_FILE).read_text(encoding="utf-8")
    assert "| sentences | random | uncertainty | diverse |" in report and "Machine:" in report
    assert (out / al.PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((out / al.WORK_DIR).iterdir())  # finished curves leave no model behind
    # the same settings: nothing left to do, nothing retrained; other settings: refused, naming the setting
    counting = _CountingFit()
    monkeypatch.setattr(al, "fit_model", counting)
    al.run_simulation(_config(dataset), out)
    assert counting.calls == 0 and len(al.read_points(out)) == len(points)
    with pytest.raises(ConfigError, match=r"max_iterations \(--max-iterations\) was 10, now 20"):
        al.run_simulation(_config(dataset, max_iterations=20), out)


@pytest.mark.slow
@needs_crf
def test_an_interrupted_simulation_resumes_where_it_stopped(dataset: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(dataset, strategies=("random", "uncertainty"), seeds=(1,))
    # fit 1: the reference; 2-5: random's four points; 6-7: uncertainty's first two; the 8th is stopped (Ctrl-C)
    monkeypatch.setattr(al, "fit_model", _CountingFit(stop_at=8))
    with pytest.raises(KeyboardInterrupt):
        al.run_simulation(cfg, tmp_path / "out")
    assert len(al.read_points(tmp_path / "out")) == 6
    (tmp_path / "out" / al.POINTS_FILE).open("a", encoding="utf-8").write('{"strategy": "unc')  # a torn line
    counting = _CountingFit()
    monkeypatch.setattr(al, "fit_model", counting)
    al.run_simulation(cfg, tmp_path / "out")
    assert counting.calls == 2  # only the two missing points: the last point's model was kept in work/
    monkeypatch.setattr(al, "fit_model", REAL_FIT)
    al.run_simulation(cfg, tmp_path / "whole")
    resumed, whole = _by_key(tmp_path / "out"), _by_key(tmp_path / "whole")
    assert resumed.keys() == whole.keys()
    for key, p in whole.items():  # the same sentences picked and the same scores as a run never stopped
        assert (resumed[key]["added"], resumed[key]["f1"]) == (p["added"], p["f1"]), key


@pytest.mark.slow
@needs_crf
def test_curves_stop_after_the_target(dataset: Path, tmp_path: Path) -> None:
    cfg = _config(dataset, strategies=("random",), seeds=(1,), stop_after_target=1, target_share=0.5)
    al.run_simulation(cfg, tmp_path / "out")
    f1s = [p["f1"] for p in sorted(al.read_points(tmp_path / "out"), key=lambda p: p["size"])]
    target = json.loads((tmp_path / "out" / al.REFERENCE_FILE).read_text(encoding="utf-8"))["target"]
    first = next(i for i, f in enumerate(f1s) if f >= target)
    assert len(f1s) == min(4, first + 2)  # the crossing and one point more (the schedule has 4)


@pytest.mark.slow
@needs_crf
def test_parallel_workers_give_the_points_of_one_process(dataset: Path, tmp_path: Path) -> None:
    cfg = _config(dataset, strategies=("random", "diverse"), seeds=(1,))
    al.run_simulation(cfg, tmp_path / "one")
    al.run_simulation(al.SimulationConfig(**{**cfg.__dict__, "workers": 2}), tmp_path / "two")
    one, two = _by_key(tmp_path / "one"), _by_key(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) == 8
    assert all((one[k]["added"], one[k]["f1"]) == (two[k]["added"], two[k]["f1"]) for k in one)
