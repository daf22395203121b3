"""The Ray Data engine on a private local cluster (one for the whole module): same bytes as the local engine, record
by record, and :func:`parsner.tag_dataset` for torch and ONNX models."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'parsner[ray]')")

from helpers.archive import AWKWARD_LINES, make_records, write_jsonl
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR, ConfigError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def ray_cluster():
    """A private 2-CPU cluster (``address="local"``: a developer's running ``ray start`` cluster is never joined)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    started = not ray.is_initialized()
    hook = os.environ.get("PYTHONBREAKPOINT")
    if started:
        previous = signal.getsignal(signal.SIGTERM)
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
        signal.signal(signal.SIGTERM, previous)  # ray.init installs sys.exit for SIGTERM
    # a scheduling deadlock fails the test instead of hanging CI
    ray.data.DataContext.get_current().execution_no_progress_timeout_s = 120
    yield ray
    if started:
        ray.shutdown()
        if hook is None:  # ray.init points breakpoint() at Ray's debugger; later tests get theirs back
            os.environ.pop("PYTHONBREAKPOINT", None)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    recs = [json.dumps(r, ensure_ascii=False) for r in make_records(90, seed=6)]
    return write_jsonl(tmp_path_factory.mktemp("ray-in") / "news.jsonl", [*AWKWARD_LINES, *recs])


def _predict(argv: list[str], capsys) -> tuple[int, str]:
    code = main(["predict", *argv])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def local_output(model: str, archive: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    target = tmp_path_factory.mktemp("ray-local") / "local.jsonl"
    assert main(["predict", "--model", model, "--input", str(archive), "--output", str(target), "--batch-size", "4",
                 "-q"]) == 0
    return target.read_bytes()


@pytest.mark.parametrize("workers", [2, 1])
@pytest.mark.slow
def test_ray_engine_equals_local_record_by_record(ray_cluster, model: str, archive: Path, local_output: bytes,
                                                  tmp_path: Path, capsys, workers: int) -> None:
    target = tmp_path / "ray.jsonl"
    code, err = _predict(["--model", model, "--input", str(archive), "--output", str(target), "--batch-size", "4",
                          "--engine", "ray", "--workers", str(workers), "-q"], capsys)
    assert code == 0, err
    got, want = target.read_bytes().split(b"\n"), local_output.split(b"\n")
    assert len(got) == len(want) == len(AWKWARD_LINES) + 91
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        assert a == b, f"record {k + 1} differs"
    assert ray_cluster.is_initialized()  # a Ray the caller started is left running


@pytest.mark.slow
def test_ray_resumes_a_local_run(ray_cluster, model: str, archive: Path, local_output: bytes, tmp_path: Path,
                                 capsys, monkeypatch) -> None:
    from parsner.inference.tagger import Tagger

    real, calls = Tagger.tag_documents, {"n": 0}

    def stop_on_fourth(self, texts, batch_size=32):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(self, texts, batch_size)

    monkeypatch.setattr(Tagger, "tag_documents", stop_on_fourth)
    target = tmp_path / "tagged.jsonl"
    argv = ["--model", model, "--input", str(archive), "--output", str(target), "--batch-size", "4", "-q"]
    code, err = _predict(argv, capsys)
    monkeypatch.undo()
    assert code == 128 + signal.SIGINT, err
    code, err = _predict([*argv, "--resume", "--engine", "ray", "--workers", "2"], capsys)
    assert code == 0, err
    assert "resuming after 12 records" in err
    assert target.read_bytes() == local_output


def test_a_gpu_request_on_a_cpu_cluster_is_refused(ray_cluster, model: str, archive: Path, tmp_path: Path,
                                                   capsys) -> None:
    if ray_cluster.cluster_resources().get("GPU"):
        pytest.skip("this cluster has a GPU")
    target = tmp_path / "gpu.jsonl"
    code, err = _predict(["--model", model, "--input", str(archive), "--output", str(target), "--engine", "ray",
                          "--workers", "2", "--gpus-per-worker", "1"], capsys)
    assert code == EXIT_USER_ERROR and "need 2 GPUs; the Ray cluster has 0" in err
    assert list(tmp_path.iterdir()) == []  # no output, no partial file
    code, err = _predict(["--model", model, "--input", str(archive), "--engine", "ray", "--device", "cpu"], capsys)
    assert code == EXIT_USER_ERROR and "--gpus-per-worker" in err


def _rows(n: int) -> list[dict]:
    return [{"id": i, "text": r["text"], "source": {"منبع": "ایرنا", "rank": i}} for i, r in
            enumerate(make_records(n, seed=7))]


def _spans(entities: list[dict]) -> list[tuple]:
    return [(e["text"], e["label"], e["start"], e["end"]) for e in entities]


@pytest.mark.slow
def test_tag_dataset_adds_entities_and_keeps_the_other_columns(ray_cluster, model: str) -> None:
    import parsner
    from parsner.inference.tagger import Tagger

    rows = _rows(60)
    ds = ray_cluster.data.from_items(rows, override_num_blocks=6)
    out = parsner.tag_dataset(ds, model, workers=2, batch_size=8).take_all()
    assert [{k: v for k, v in r.items() if k != "entities"} for r in out] == ds.take_all()
    ref = Tagger.from_pretrained(model, device="cpu")([r["text"] for r in rows], batch_size=8)
    assert sum(len(e) for e in ref) > 0
    for got, want in zip(out, ref, strict=True):
        assert _spans(got["entities"]) == _spans(want)
        assert [e["score"] for e in got["entities"]] == pytest.approx([e["score"] for e in want], abs=1e-3)
    with pytest.raises(ConfigError, match="GPUs"):
        parsner.tag_dataset(ds, model, workers=1, num_gpus=1)


@pytest.mark.slow
def test_tag_dataset_with_an_onnx_export(ray_cluster, model: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the ONNX extra is not installed (pip install 'parsner[onnx]')")
    from parsner.inference.export import export_onnx
    from parsner.inference.tagger import Tagger
    from parsner.serving.ray_dataset import tag_dataset

    onnx_dir = tmp_path / "onnx"
    export_onnx(Path(model), onnx_dir)
    rows = _rows(30)
    out = tag_dataset(ray_cluster.data.from_items(rows, override_num_blocks=3), onnx_dir, workers=1,
                      batch_size=16).take_all()
    ref = Tagger.from_pretrained(model, device="cpu")([r["text"] for r in rows], batch_size=16)
    assert [_spans(r["entities"]) for r in out] == [_spans(e) for e in ref]


def test_model_errors_are_one_line_before_and_inside_ray(model: str, archive: Path, tmp_path: Path, capsys) -> None:
    import shutil

    from parsner.serving.ray_engine import _parsner_error

    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / "config.json").write_text('{"model_type": "nonsense"}', encoding="utf-8")
    code, err = _predict(["--model", str(broken), "--input", str(archive), "--engine", "ray"], capsys)
    assert code == EXIT_USER_ERROR and "unknown architecture" in err and "Traceback" not in err

    class ActorDied(Exception):  # what Ray keeps of an actor whose constructor raised: the text only
        error_msg = "ray::MapWorker.__init__() ...\nparsner.errors.ModelLoadError: model 'm': no tokenizer\n  more"

    found = _parsner_error(ActorDied())
    assert found is not None and str(found) == "a Ray worker stopped: model 'm': no tokenizer"
    assert _parsner_error(RuntimeError("a bug")) is None


@pytest.mark.slow
def test_a_lone_surrogate_is_refused_before_ray_starts(ray_cluster, model: str, tmp_path: Path, capsys) -> None:
    """The check pass is the same for both engines: file:line and exit 2, or skipped and counted with --skip-bad
    (the read task skips it too, so the bytes equal the local engine's)."""
    recs = [json.dumps(r, ensure_ascii=False) for r in make_records(59, seed=6)]
    src = write_jsonl(tmp_path / "sur.jsonl", [*recs[:40], '{"id": 41, "text": "علی \\ud800 رفت"}', *recs[40:]])
    target = tmp_path / "out" / "ray.jsonl"
    argv = ["--model", model, "--input", str(src), "--output", str(target), "--batch-size", "4", "-q"]
    code, err = _predict([*argv, "--engine", "ray", "--workers", "1"], capsys)
    assert code == EXIT_USER_ERROR and f"{src}:41: 'text' holds a lone surrogate U+D800" in err, err
    assert "Traceback" not in err and not target.parent.exists()
    code, err = _predict([*argv, "--engine", "ray", "--workers", "1", "--skip-bad"], capsys)
    assert code == 0 and "1 bad record(s) skipped" in err, err
    local = tmp_path / "local.jsonl"
    code, err = _predict([*argv[:4], "--output", str(local), *argv[6:], "--skip-bad"], capsys)
    assert code == 0, err
    assert target.read_bytes() == local.read_bytes() and len(local.read_bytes().splitlines()) == 59
