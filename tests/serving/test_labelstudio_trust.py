"""``parsner serve --label-studio`` facing hostile callers: the token goes only to the Label Studio the operator
named (no host from /setup, no redirect), network errors are not echoed, a retrain never swaps on nothing and
cannot be aimed, old models go, rounds are rate-limited, bad bodies and bad tasks get 4xx or a reason, and
/label-studio/health stays small. Stand-in tagger, real uvicorn, tiny recording HTTP servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'parsner[serve]')")

from helpers.labelstudio import CONFIG, EMOJI_TEXT, TOKEN, FakeTagger, Recorder, make_backend
from helpers.serve import bearer, http, running_server
from parsner.serving.labelstudio_backend import MAX_PROJECTS, SHOWN_LABELS, LabelStudioBackend
from parsner.serving.labelstudio_training import (
    HOLDOUT_KEY_FILE,
    check_label_studio_url,
    export_url,
    holdout_key,
    prune_models,
    read_holdout_key,
)
from parsner.serving.server import ServeOptions, create_app

START = {"action": "START_TRAINING", "project": {"id": 5, "label_config": CONFIG}}


@contextlib.contextmanager
def serving(backend: LabelStudioBackend, tagger: Any = None) -> Iterator[str]:
    app = create_app(tagger or FakeTagger(), str(backend.model_dir), ServeOptions(), label_studio=backend)
    with running_server(app) as url:
        yield url


def call(url: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    return http("GET" if body is None else "POST", f"{url}/label-studio/{path}", body, **kw)


def setup(url: str, hostname: str | None, token: str | None = TOKEN, project: str = "5.17") -> int:
    body = {"project": project, "schema": CONFIG, **({"hostname": hostname} if hostname else {}),
            **({"access_token": token} if token else {})}
    return call(url, "setup", body)[0]


# ------------------------------------------------------------------------------------------ the token


def test_a_second_setup_pointing_elsewhere_never_gets_the_token(tmp_path: Path) -> None:
    with Recorder((401, {}, b'{"detail": "no"}')) as real, Recorder() as elsewhere:
        backend = make_backend(tmp_path, real.url)
        with serving(backend) as url:
            assert setup(url, real.url) == 200
            # Another host (with a '#' that would cut the export path off), no new token: noted, never used.
            assert setup(url, f"{elsewhere.url}/steal#", token=None) == 200
            status, out = call(url, "webhook", START)
            assert (status, out["status"]) == (200, "started"), out
            backend.retrainer.wait(30)
            _, health = call(url, "health")
    assert elsewhere.requests == []
    assert [(m, p) for m, p, _h in real.requests] == [("GET", "/api/projects/5/export?exportType=JSON")]
    assert real.authorizations() == [f"Token {TOKEN}"]
    assert health["projects"]["5"]["setup_hostname_ignored"] is True and health["projects"]["5"]["has_token"]
    error = health["training"]["last"]["error"]
    assert error.startswith("the export could not be fetched: Label Studio answered HTTP 401") and \
        error.endswith("(see rounds/0001/log.txt)")
    assert TOKEN not in json.dumps(health) and elsewhere.url not in json.dumps(health)


def test_only_an_authenticated_setup_sets_the_token(tmp_path: Path) -> None:
    with Recorder((401, {}, b"{}")) as real:
        backend = make_backend(tmp_path, real.url)
        with serving(backend) as url:
            status, _ = call(url, "setup", {"project": "5.1", "schema": CONFIG, "hostname": real.url,
                                            "access_token": TOKEN}, auth=False)
            assert status == 401
            # Other routes carrying a token set nothing either.
            assert call(url, "predict", {"tasks": [], "project": "5.1", "label_config": CONFIG,
                                         "access_token": TOKEN})[0] == 200
            assert call(url, "webhook", {**START, "access_token": TOKEN})[0] == 409  # still no token
    assert backend.project("5").token is None


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirecting_label_studio_is_a_failed_round(tmp_path: Path, status: int) -> None:
    with Recorder() as elsewhere, Recorder((status, {"Location": "PLACEHOLDER"}, b"")) as real:
        real.answer = (status, {"Location": f"{elsewhere.url}/collect"}, b"")
        backend = make_backend(tmp_path, real.url)
        with serving(backend) as url:
            assert setup(url, real.url) == 200
            assert call(url, "webhook", START)[1]["status"] == "started"
            backend.retrainer.wait(30)
            last = call(url, "health")[1]["training"]["last"]
    assert last["status"] == "failed" and last["error"] == \
        "the export could not be fetched: redirect refused (see rounds/0001/log.txt)"
    assert elsewhere.requests == [] and len(real.requests) == 1
    log = (backend.opts.work_dir / "rounds" / "0001" / "log.txt").read_text(encoding="utf-8")
    assert f"HTTP {status}" in log and TOKEN not in log


@pytest.mark.parametrize("url", ["http://localhost:8080", "https://ls.example.org/label-studio/", "http://[::1]:8080",
                                 "http://127.0.0.1:8080/a/b%20c"])
def test_label_studio_urls_accepted(url: str) -> None:
    assert check_label_studio_url(url) == url.rstrip("/")
    assert export_url(url, "12") == f"{url.rstrip('/')}/api/projects/12/export?exportType=JSON"


@pytest.mark.parametrize(("url", "says"), [
    ("ftp://ls.example.org", "http"), ("javascript:alert(1)", "http"), ("localhost:8080", "http"),
    ("http://user:pw@ls.example.org", "user"), ("http://ls@evil.example", "user"),
    ("http://ls.example.org/#", "fragment"), ("http://ls.example.org/?next=/x", "query"),
    ("http://ls.example.org:99999", "port"), ("http://", "host"), ("http://ls.example.org/a b", "spaces"),
    ("http://ls.example.org\\@evil", "backslash"), ("http://ls.example.org/../x", "path"), ("", "URL"),
    ("http://ls.exämple.org", "ASCII"), ("http://ls.example.org/\x00", "spaces"),
])
def test_label_studio_urls_refused(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_label_studio_url(url)


@pytest.mark.parametrize("pid", ["0", "05", "5#", "5/../../x", "5?x=1", "-5", "1" * 19, "5.1"])
def test_the_export_path_takes_only_a_positive_project_id(pid: str) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        export_url("http://localhost:8080", pid)


def test_label_studio_url_options_are_checked_before_the_model_loads(tmp_path: Path, capsys) -> None:
    from parsner.cli import main
    from parsner.errors import EXIT_USER_ERROR

    model = tmp_path / "model"
    model.mkdir()  # no model in it: an option that got past its check would fail differently
    cfg = tmp_path / "retrain.yaml"
    cfg.write_text("model: tiny\nepochs: 2\n", encoding="utf-8")
    train = ["--label-studio", "--train-config", str(cfg)]
    cases = [
        (train, "--train-config needs --label-studio-url"),
        ([*train, "--label-studio-url", "http://ls.example.org/#x"], "--label-studio-url"),
        ([*train, "--label-studio-url", "file:///etc/passwd"], "--label-studio-url"),
        ([*train, "--label-studio-url", "http://me:secret@ls.example.org"], "--label-studio-url: no user"),
        (["--label-studio-url", "http://localhost:8080"], "--label-studio-url needs --label-studio"),
        (["--label-studio", "--keep-models", "2"], "--keep-models needs --train-config"),
        (["--label-studio", "--min-retrain-interval", "9"], "--min-retrain-interval needs --train-config"),
        ([*train, "--label-studio-url", "http://localhost:8080", "--keep-models", "0"], "--keep-models must be"),
        ([*train, "--label-studio-url", "http://localhost:8080", "--min-retrain-interval", "-1"],
         "--min-retrain-interval must be"),
        ([*train, "--label-studio-url", "http://localhost:8080", "--min-retrain-interval", "nan"],
         "--min-retrain-interval must be"),
    ]
    for extra, says in cases:
        assert main(["serve", "--model", str(model), *extra]) == EXIT_USER_ERROR, extra
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert "secret" not in err
    assert not (tmp_path / "model.label-studio").exists()  # refused before the work folder was made


# ------------------------------------------------------------------------------------------ the held-out part


def test_the_held_out_key_is_made_once_and_private(tmp_path: Path) -> None:
    key = holdout_key(tmp_path)
    path = tmp_path / HOLDOUT_KEY_FILE
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert holdout_key(tmp_path) == key == read_holdout_key(path)  # tasks never change sides between rounds
    (tmp_path / "other").mkdir()
    assert holdout_key(tmp_path / "other") != key  # each work folder its own
    path.write_text("guessable\n", encoding="utf-8")
    from parsner.errors import ConfigError

    with pytest.raises(ConfigError, match="not a held-out key"):
        read_holdout_key(path)


def _round_dir(tmp_path: Path, tasks: list[dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    holdout_key(work)
    round_dir = work / "rounds" / "0001"
    round_dir.mkdir(parents=True)
    (tmp_path / "retrain.yaml").write_text("model: tiny\n", encoding="utf-8")
    (round_dir / "export.json").write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    req = {"round": 1, "project": "5", "train_config": str(tmp_path / "retrain.yaml"), "label_map": None,
           "config": {"from_name": "ents", "to_name": "article", "data_key": "body", "labels": ["PER", "ORG"]},
           "holdout_fraction": 0.2, "holdout_key_file": str(work / HOLDOUT_KEY_FILE),
           "models_dir": str(work / "models"), "current": {"model": str(tmp_path / "model"), "version": "v0"}}
    return round_dir, req


def _tasks(n: int, with_entities: bool) -> list[dict[str, Any]]:
    region = {"from_name": "ents", "to_name": "article", "type": "labels",
              "value": {"start": 0, "end": 3, "text": "علی", "labels": ["PER"]}}
    return [{"id": k, "data": {"body": "علی آمد."}, "annotations": [{"result": [region] if with_entities else []}]}
            for k in range(1, n + 1)]


def test_held_out_tasks_without_an_entity_train_nothing(tmp_path: Path, monkeypatch) -> None:
    from parsner.workflows import labelstudio_retrain as worker

    def no_training(*_args: Any) -> None:
        raise AssertionError("nothing should be trained")

    monkeypatch.setattr(worker, "run_stage", no_training)
    round_dir, req = _round_dir(tmp_path, _tasks(40, with_entities=False))
    result = worker.run_round(round_dir, req, worker.RoundStatus(round_dir))
    assert result["status"] == "skipped" and "mark no entity" in result["reason"] and result["held_out_tasks"] > 0
    round_dir, req = _round_dir(tmp_path / "empty", _tasks(1, with_entities=True))
    result = worker.run_round(round_dir, req, worker.RoundStatus(round_dir))
    assert result["status"] == "skipped" and "need at least one of each" in result["reason"]


@pytest.mark.parametrize(("current", "new", "gold", "says"), [
    (0.0, 0.0, 7, "F1 on the held-out tasks is 0"),  # a tie at zero
    (0.4, 0.9, 0, "no entity"),  # nothing of the config's types held out: nothing measured
])
def test_a_round_never_swaps_on_nothing(tmp_path: Path, monkeypatch, current: float, new: float, gold: int,
                                        says: str) -> None:
    from parsner.workflows import labelstudio_retrain as worker

    monkeypatch.setattr(worker, "run_stage", lambda *_a: None)  # build, train, eval: stand-ins
    f1 = iter([current, new])
    monkeypatch.setattr(worker, "visible_f1", lambda *_a: {"f1_strict": next(f1), "f1_default": 0.0,
                                                           "gold_entities": gold})
    round_dir, req = _round_dir(tmp_path, _tasks(40, with_entities=True))
    result = worker.run_round(round_dir, req, worker.RoundStatus(round_dir))
    assert result["status"] == "kept" and says in result["reason"], result


# ------------------------------------------------------------------------------------------ disk and CPU


def _model(models: Path, name: str, kind: str | None = "run") -> Path:
    from parsner.atomic import write_marker

    path = models / name
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"x")
    if kind:
        write_marker(path, kind)
    return path


def test_keep_models_removes_only_old_retrained_models(tmp_path: Path) -> None:
    models = tmp_path / "work" / "models"
    made = [_model(models, f"parsner-{n}") for n in range(1, 7)]
    failed = _model(models, "parsner-7.incomplete", kind="run-work")
    mine = _model(models, "parsner-8", kind=None)  # not marked by parsner: the user's
    other = _model(models, "best-model")
    served, base = made[0], made[1]  # an old model still served, and --model living in the work folder
    gone = prune_models(models, 2, [served, base])
    assert sorted(p.name for p in gone) == ["parsner-3", "parsner-4", "parsner-7.incomplete"]
    assert sorted(p.name for p in models.iterdir()) == ["best-model", "parsner-1", "parsner-2", "parsner-5",
                                                        "parsner-6", "parsner-8"]
    assert mine.is_dir() and other.is_dir() and not failed.exists()
    assert prune_models(models, 2, [served, base]) == []


def test_a_round_prunes_after_it_ends_and_keeps_the_served_model(tmp_path: Path, monkeypatch) -> None:
    backend = make_backend(tmp_path, "http://127.0.0.1:9", keep_models=1, min_retrain_interval=0)
    models = backend.opts.work_dir / "models"
    served = _model(models, "parsner-1")
    backend.model_dir = served
    for n in (2, 3):
        _model(models, f"parsner-{n}")
    monkeypatch.setattr(backend.retrainer, "_run_worker", lambda *_a: {"status": "kept"})
    backend.retrainer.request({"project": "5", "config": None, "tasks": []})
    backend.retrainer.wait(30)
    assert sorted(p.name for p in models.iterdir()) == ["parsner-1", "parsner-3"]
    log = (backend.opts.work_dir / "rounds" / "0001" / "log.txt").read_text(encoding="utf-8")
    assert "removed old models (--keep-models 1): parsner-2" in log


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **bearer(url)})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read())


def test_rounds_are_rate_limited(tmp_path: Path, monkeypatch) -> None:
    backend = make_backend(tmp_path, "http://127.0.0.1:9", min_retrain_interval=120, retrain_every=1)
    monkeypatch.setattr(backend.retrainer, "_round", lambda job: {"status": "kept"})
    tasks = _tasks(3, with_entities=True)
    with serving(backend) as url:
        status, _h, out = _post(f"{url}/label-studio/train", {"project": 5, "label_config": CONFIG,
                                                              "annotations": tasks})
        assert (status, out["status"]) == (200, "started"), out
        status, headers, out = _post(f"{url}/label-studio/train", {"project": 5, "annotations": tasks})
        assert status == 429 and out["error"]["code"] == "retrain_too_soon"
        assert 100 <= int(headers["retry-after"]) <= 120 and f"retry in {headers['retry-after']} s" in \
            out["error"]["message"]
        assert setup(url, None) == 200
        event = {"action": "ANNOTATION_CREATED", "project": {"id": 5}, "annotation": {"result": []}}
        status, out = call(url, "webhook", event)  # --retrain-every 1: due, but too soon; the count stays
        assert status == 200 and out["training"]["status"] == "not started" and out["training"]["retry_after_s"] > 0
        assert call(url, "health")[1]["projects"]["5"]["new_annotations"] == 1


# ------------------------------------------------------------------------------------------ inputs


@pytest.mark.parametrize(("body", "says"), [
    ("[" * 200_000 + "]" * 200_000, "nested deeper than 64"),
    ('{"tasks": [], "tasks": [{"id": 1}]}', "duplicate key"),
    ('{"tasks": [}', "malformed JSON"),
    ('{"project": ' + "9" * 5000 + "}", "not usable JSON"),
    (b'{"tasks": "\xff"}', "not UTF-8"),
])
def test_bad_bodies_are_400_on_every_route(tmp_path: Path, body: Any, says: str) -> None:
    backend = make_backend(tmp_path, "http://127.0.0.1:9")
    with serving(backend) as url:
        for route in ("setup", "predict", "webhook", "train"):
            status, doc = call(url, route, body)
            assert status == 400 and doc["error"]["code"] == "malformed_json" and says in doc["error"]["message"], \
                (route, doc)
        assert http("GET", f"{url}/health")[0] == 200  # still serving


class PickyTagger(FakeTagger):
    """Fails on any batch holding the word "بمب" (as a model might on some text), like the Tagger on a surrogate."""

    def tag_documents(self, texts: list[str], batch_size: int = 32) -> list[Any]:
        if any("بمب" in t for t in texts):
            raise RuntimeError("the model choked")
        return super().tag_documents(texts, batch_size)


def test_one_bad_task_leaves_the_others_their_predictions(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, "http://127.0.0.1:9")
    tasks = [{"id": 1, "data": {"body": "علی به تهران رفت."}}, {"id": 2, "data": {"body": "bad \ud800 text"}},
             {"id": 3, "data": {"body": "x" * 100_001}}, {"id": 4, "data": {"body": 7}}, {"id": 5},
             {"id": 6, "data": {"body": "بمب علی"}}, {"id": 7, "data": {"body": "سازمان ملل"}}]
    raw = json.dumps({"tasks": tasks, "project": "5.1", "label_config": CONFIG})  # "\ud800" as a JSON escape
    with serving(backend, PickyTagger()) as url:
        status, out = call(url, "predict", raw)
        assert status == 200, out
        results = out["results"]
        assert len(results) == 7
        assert [bool(r["result"]) for r in results] == [True, False, False, False, False, False, True]
        assert [("skipped" in r) for r in results] == [False, True, True, True, True, True, False]
        assert "lone surrogate U+D800 at character 5" in results[1]["skipped"]
        assert "100001 characters" in results[2]["skipped"] and "no text field 'body'" in results[3]["skipped"]
        assert results[5]["skipped"] == "the model could not tag this text (see the server log)"
        health = call(url, "health")[1]
        assert (health["tasks_invalid_text"], health["tasks_too_long"], health["tasks_without_text"],
                health["tasks_not_tagged"]) == (1, 1, 2, 1)
        status, out = call(url, "predict", {"tasks": [tasks[5]], "project": "5.1"})  # every text fails: 500
        assert status == 500 and out["error"]["code"] == "model_error"


def _config(n_labels: int) -> str:
    return ('<View><Labels name="ents" toName="article">' + "".join(f'<Label value="L{i:05d}-{"x" * 20}"/>'
                                                                     for i in range(n_labels))
            + '</Labels><Text name="article" value="$body"/></View>')


def test_health_stays_small_whatever_callers_send(tmp_path: Path) -> None:
    backend = make_backend(tmp_path, "http://127.0.0.1:9")
    big = _config(2000)
    with serving(backend) as url:
        assert call(url, "health", auth=False) == (200, {"status": "UP", "model_class": "ParsNER",
                                                         "model_version": backend.version})
        for k in range(1, MAX_PROJECTS + 1):
            assert call(url, "setup", {"project": f"{k}.1", "schema": big, "access_token": TOKEN})[0] == 200
        status, out = call(url, "setup", {"project": f"{MAX_PROJECTS + 1}.1", "schema": big})
        assert status == 429 and out["error"]["code"] == "too_many_projects" and str(MAX_PROJECTS) in \
            out["error"]["message"]
        assert call(url, "setup", {"project": "1.2", "schema": CONFIG})[0] == 200  # a known project: updated
        # Predicting for yet another project is answered, not remembered.
        assert call(url, "predict", {"tasks": [{"data": {"body": EMOJI_TEXT}}], "project": "999.1",
                                     "label_config": CONFIG})[0] == 200
        t0 = time.perf_counter()
        status, raw = http("GET", f"{url}/label-studio/health", headers={"Accept": "application/json"})
        seconds = time.perf_counter() - t0
    size = len(json.dumps(raw).encode())
    assert status == 200 and len(raw["projects"]) == MAX_PROJECTS and "999" not in raw["projects"]
    p2 = raw["projects"]["2"]
    assert p2["labels_total"] == 2000 and len(p2["labels"]) == SHOWN_LABELS
    assert len(p2["labels_never_predicted"]) == SHOWN_LABELS and p2["labels_never_predicted_total"] == 2000
    assert raw["projects"]["1"]["labels_total"] == 3
    assert size < 300_000 and seconds < 1.0, (size, seconds)
    assert TOKEN not in json.dumps(raw)
    print(f"\n/label-studio/health with {MAX_PROJECTS} projects of 2000 labels: {size} bytes, {seconds * 1000:.0f} ms")
