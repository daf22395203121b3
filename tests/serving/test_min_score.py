"""``serve --min-score``: the server-wide floor on entity scores for /v1/ner and Label Studio predictions, and a
/v1/ner request's own ``"min_score"`` (checked like the flag: 0 to 1, else 422)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.labelstudio import CONFIG, FakeTagger

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

TEXT = "علی در تهران و سازمان ملل"  # FakeTagger scores every entity 0.91234


def _app(tmp_path: Path, floor: float):
    from parsner.serving.labelstudio_backend import LabelStudioBackend, LabelStudioOptions
    from parsner.serving.server import ServeOptions, create_app

    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}", encoding="utf-8")
    backend = LabelStudioBackend(model, LabelStudioOptions(min_score=floor))
    return create_app(FakeTagger(), str(model), ServeOptions(min_score=floor), label_studio=backend)


@pytest.fixture()
def served(tmp_path: Path):
    """A server with --min-score 0.95 (every FakeTagger entity below it), /v1/ner and Label Studio alike."""
    from helpers.serve import running_server

    with running_server(_app(tmp_path, 0.95)) as url:
        yield url


def test_server_floor_and_per_request_min_score(served: str) -> None:
    from helpers.serve import http

    status, out = http("POST", f"{served}/v1/ner", {"text": TEXT})
    assert status == 200 and out["entities"] == []  # all below the server's 0.95
    status, out = http("POST", f"{served}/v1/ner", {"text": TEXT, "min_score": 0.9})
    assert status == 200 and len(out["entities"]) == 3 and all(e["score"] >= 0.9 for e in out["entities"])
    status, out = http("POST", f"{served}/v1/ner", {"texts": [TEXT, "علی"], "min_score": 0})
    assert status == 200 and [len(r["entities"]) for r in out["results"]] == [3, 1]
    for bad in (1.5, -0.1, "high", None, True):
        status, out = http("POST", f"{served}/v1/ner", {"text": TEXT, "min_score": bad})
        assert status == 422 and out["error"]["code"] == "bad_min_score", bad
        assert "from 0 to 1" in out["error"]["message"]
    status, info = http("GET", f"{served}/v1/model")
    assert status == 200 and info["min_score"] == 0.95 and info["calibrated"] is False


@pytest.mark.parametrize(("floor", "regions"), [(0.95, 0), (0.9, 3)])
def test_label_studio_predictions_respect_the_floor(tmp_path: Path, floor: float, regions: int) -> None:
    from helpers.serve import http, running_server

    with running_server(_app(tmp_path, floor)) as url:
        status, out = http("POST", f"{url}/label-studio/predict",
                           {"tasks": [{"id": 1, "data": {"body": TEXT}}], "project": "1.1", "label_config": CONFIG})
    assert status == 200
    res = out["results"][0]
    assert "skipped" not in res and len(res["result"]) == regions
    assert all(r["score"] >= floor for r in res["result"])


@pytest.mark.parametrize("value", ["2", "-1", "x"])
def test_serve_min_score_flag_is_checked_first(tmp_path: Path, capsys, value: str) -> None:
    from parsner.cli import main

    code = main(["serve", "--model", str(tmp_path / "none"), "--min-score", value])
    assert code == 2 and "--min-score" in capsys.readouterr().err


def test_the_page_threshold_field_starts_at_the_server_floor() -> None:
    import re

    from parsner.serving.page import page_html

    field = re.search(r'<input id="min-score"[^>]*>', page_html(["PER"], min_score=0.95, calibrated=True)).group(0)
    assert 'value="0.95"' in field and 'min="0"' in field and 'max="1"' in field and "calibrated: 0.9" in field
    raw = re.search(r'<input id="min-score"[^>]*>', page_html(["PER"])).group(0)
    assert 'value="0"' in raw and "raw (not calibrated)" in raw
