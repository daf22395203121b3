"""``parsner serve --label-studio``: the labeling config, type mapping, offsets, held-out split and swap rule,
and the ``/label-studio/*`` routes (a stand-in tagger behind the real app; no model, no Label Studio)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers.labelstudio import CONFIG, EMOJI_TEXT, TOKEN, FakeTagger, entity_at
from parsner.serving.labelstudio_protocol import (
    LabelConfigError,
    LabelingConfig,
    TypeMapper,
    is_held_out,
    offsets_are_utf16,
    parse_labeling_config,
    project_id,
    reader_tasks,
    regions,
    utf16_offset,
)
from parsner.workflows.labelstudio_retrain import decide

CFG = LabelingConfig("ents", "article", "body", ("PER", "Location", "ORG"))


# ------------------------------------------------------------------------------------------ the config


def test_names_come_from_the_config() -> None:
    assert parse_labeling_config(CONFIG) == CFG
    two = ('<View><Header value="x"/><Text name="t1" value="$title"/><Labels name="l" toName="nope,t2">'
           '<Label value="PER" background="red"/></Labels><Text name="t2" value="$content"/></View>')
    assert parse_labeling_config(two) == LabelingConfig("l", "t2", "content", ("PER",))


@pytest.mark.parametrize(
    ("xml", "says"),
    [
        (None, "no labeling config"),
        ("<View><Text", "not valid XML"),
        ('<View><Text name="t" value="$text"/><Choices name="c" toName="t"/></View>', "no <Labels> tag"),
        ('<View><Labels name="l" toName="x"><Label value="PER"/></Labels><Text name="t" value="$t"/></View>',
         "names no <Text>"),
        ('<View><Labels name="l" toName="t"><Label value="PER"/></Labels><Text name="t" value="fixed"/></View>',
         "fixed text"),
        ('<View><Labels name="l" toName="t"><Label value="PER"/></Labels>'
         '<Text name="t" value="$u" valueType="url"/></View>', "URL"),
        ('<View><Labels name="l" toName="t"></Labels><Text name="t" value="$t"/></View>', "no <Label"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><View/>', "DOCTYPE"),
    ],
)
def test_unusable_configs_say_why(xml: Any, says: str) -> None:
    with pytest.raises(LabelConfigError, match=says.replace("(", r"\(")):
        parse_labeling_config(xml)


def test_model_types_map_onto_the_config_labels() -> None:
    mapper = TypeMapper(["PER", "Location", "Organization"])
    assert mapper.target("PER") == "PER"
    assert mapper.target("LOC") == "Location"  # same canonical type
    assert mapper.target("ORG") == "Organization"
    assert mapper.target("DAT") is None
    assert mapper.missing_labels(["PER", "DAT"]) == ["Location", "Organization"]


# ------------------------------------------------------------------------------------------ regions


@dataclass
class Doc:
    text: str
    entities: list[dict[str, Any]]
    scores: list[float] = field(default_factory=lambda: [0.9, 0.6])


def test_regions_index_the_tasks_own_text_and_drop_unknown_types() -> None:
    doc = Doc(EMOJI_TEXT, [entity_at(EMOJI_TEXT, "تهران", "LOC"), entity_at(EMOJI_TEXT, "علی", "PER"),
                           entity_at(EMOJI_TEXT, "دیروز", "DAT")])
    dropped: Counter[str] = Counter()
    found = regions(doc, CFG, TypeMapper(CFG.labels), dropped=dropped)
    assert [(r["from_name"], r["to_name"], r["type"]) for r in found] == [("ents", "article", "labels")] * 2
    assert [r["value"]["labels"] for r in found] == [["PER"], ["Location"]]
    for r in found:
        v = r["value"]
        assert EMOJI_TEXT[v["start"] : v["end"]] == v["text"]  # code points, Label Studio's <Text> offsets
        assert r["score"] == 0.9123
    assert dropped == Counter({"DAT": 1})
    shifted = regions(doc, CFG, TypeMapper(CFG.labels), utf16=True)
    assert [r["value"]["start"] for r in shifted] == [r["value"]["start"] + 1 for r in found]
    assert utf16_offset(EMOJI_TEXT, 2) == 3 and utf16_offset("علی", 2) == 2


def test_predictions_read_back_through_the_label_studio_reader(tmp_path: Path) -> None:
    """What the backend predicts is what `parsner data build` reads from the export, in both conventions."""
    from parsner.data.readers.labelstudio import read_labelstudio

    doc = Doc(EMOJI_TEXT, [entity_at(EMOJI_TEXT, "علی", "PER"), entity_at(EMOJI_TEXT, "تهران", "LOC")])
    for utf16 in (False, True):
        result = regions(doc, CFG, TypeMapper(CFG.labels), utf16=utf16)
        tasks, _ = reader_tasks([{"id": 1, "data": {"body": EMOJI_TEXT}, "annotations": [{"result": result}]}], CFG)
        path = tmp_path / f"export-{utf16}.json"
        path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
        read = read_labelstudio(path)
        (sent,) = read.sentences
        assert [t for t in sent.tags if t != "O"] == ["B-PER", "B-LOC"]
        assert offsets_are_utf16(EMOJI_TEXT, result) is utf16


def test_offset_convention_needs_a_character_outside_the_bmp() -> None:
    plain = "علی به تهران رفت."
    result = [{"from_name": "ents", "value": {"start": 0, "end": 3, "text": "علی", "labels": ["PER"]}}]
    assert offsets_are_utf16(plain, result) is None
    assert offsets_are_utf16(EMOJI_TEXT, [{"value": {"start": 0, "end": 1, "text": "😀"}}]) is None


def test_reader_tasks_keep_the_configs_text_and_regions() -> None:
    region = {"from_name": "ents", "type": "labels", "value": {"start": 0, "end": 3, "text": "علی", "labels": ["PER"]}}
    other = {"from_name": "sentiment", "type": "choices", "value": {"choices": ["pos"]}}
    tasks, notes = reader_tasks([
        {"id": 1, "data": {"body": "علی آمد.", "title": "x"},
         "annotations": [{"result": [region, other]}, {"was_cancelled": True, "result": []}]},
        {"id": 2, "data": {"title": "no body"}, "annotations": [{"result": []}]},
        {"id": 3, "data": {"body": "هیچ"}, "annotations": [{"was_cancelled": True}]},
    ], CFG)
    assert tasks == [{"id": 1, "data": {"text": "علی آمد."}, "annotations": [
        {"id": None, "completed_by": None, "created_at": None, "updated_at": None, "result": [region]}]}]
    assert notes == Counter({"tasks without the text field 'body'": 1, "tasks without an annotation": 1})


def test_held_out_part_is_stable_and_about_a_fifth() -> None:
    ids = range(1, 2001)
    key = bytes(range(32))
    held = [i for i in ids if is_held_out(i, key)]
    assert held == [i for i in ids if is_held_out(str(i), key)]  # ids from JSON ints or strings alike
    assert 0.16 < len(held) / 2000 < 0.24
    other = [i for i in ids if is_held_out(i, bytes(32))]  # another work folder's key: another split
    assert other != held and 0.16 < len(other) / 2000 < 0.24
    with pytest.raises(ValueError, match="key"):
        is_held_out(1, b"")


def test_project_references() -> None:
    assert project_id("3.1796284911") == "3"
    assert project_id({"id": 7, "title": "x"}) == "7"
    assert project_id(12) == "12"
    assert project_id(None) is None and project_id(True) is None and project_id("abc") is None
    for bad in ("0", 0, -3, "-3", "03", "3#x", "3/../x", "1" * 19, 1.5, [3]):  # only a positive integer
        assert project_id(bad) is None, bad


def test_the_swap_rule() -> None:
    assert decide(0.50, 0.51, 12) and decide(0.50, 0.50, 12)  # better or tied: swap
    assert not decide(0.50, 0.49, 12)  # worse: keep the served model
    assert not decide(0.5, float("nan"), 12) and decide(float("nan"), 0.1, 12)


def test_the_swap_rule_never_swaps_on_nothing() -> None:
    from parsner.workflows.labelstudio_retrain import why_kept

    assert not decide(0.0, 0.0, 12)  # a tie at zero: neither model finds anything
    assert not decide(float("nan"), 0.0, 12) and not decide(0.0, 0.0, 0)
    assert not decide(0.2, 0.9, 0)  # held-out tasks without an entity measure nothing
    assert "no entity" in why_kept(0.2, 0.9, 0) and "F1" in why_kept(0.0, 0.0, 5)
    assert "worse" in why_kept(0.5, 0.4, 5)


def test_a_later_session_serves_the_last_swapped_model(tmp_path: Path) -> None:
    from parsner.serving.labelstudio_training import last_swapped

    base, new, work = tmp_path / "base", tmp_path / "work" / "models" / "parsner-2", tmp_path / "work"
    base.mkdir()
    new.mkdir(parents=True)
    assert last_swapped(work, base) == (base, None, 0)
    doc = {"model": str(new), "version": "parsner-2-abcd1234", "round": 2, "base_model": str(base.resolve())}
    (work / "current.json").write_text(json.dumps(doc), encoding="utf-8")
    assert last_swapped(work, base) == (new, "parsner-2-abcd1234", 2)
    assert last_swapped(work, tmp_path / "other") == (tmp_path / "other", None, 0)


# ------------------------------------------------------------------------------------------ the routes


@pytest.fixture()
def app_url(tmp_path: Path):
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from helpers.serve import running_server
    from parsner.serving.labelstudio_backend import LabelStudioBackend, LabelStudioOptions
    from parsner.serving.server import ServeOptions, create_app

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    backend = LabelStudioBackend(model, LabelStudioOptions())
    with running_server(create_app(FakeTagger(), str(model), ServeOptions(), label_studio=backend)) as url:
        yield url


def call(url: str, path: str, body: Any = None) -> tuple[int, Any]:
    from helpers.serve import http

    return http("GET" if body is None else "POST", f"{url}/label-studio/{path}", body)


def test_setup_and_predict_with_non_default_names(app_url: str) -> None:
    status, setup = call(app_url, "setup", {"project": "3.1796284911", "schema": CONFIG,
                                            "hostname": "http://localhost:8080", "access_token": TOKEN})
    assert status == 200 and setup["model_version"].startswith("parsner-0-")
    tasks = [{"id": 7, "data": {"body": EMOJI_TEXT}}, {"id": 8, "data": {"text": "علی"}},
             {"id": 9, "data": {"body": "سازمان ملل و علی"}}]
    status, out = call(app_url, "predict", {"tasks": tasks, "project": "3.1796284911", "label_config": CONFIG})
    assert status == 200 and len(out["results"]) == 3
    first, missing, third = out["results"]
    assert missing == {"result": [], "score": 0.0, "model_version": setup["model_version"],
                       "skipped": "the task has no text field 'body'"}
    assert first["model_version"] == third["model_version"] == setup["model_version"]
    for res, task in ((first, tasks[0]), (third, tasks[2])):
        # the task's score is 1 - its least-confident-word uncertainty (LS sorts by it); regions keep entity scores
        assert res["result"] and res["score"] == 0.8 and {r["score"] for r in res["result"]} == {0.9123}
        for r in res["result"]:
            assert (r["from_name"], r["to_name"], r["type"]) == ("ents", "article", "labels")
            assert task["data"]["body"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]
    assert {r["value"]["labels"][0] for r in first["result"]} == {"PER", "Location"}
    status, health = call(app_url, "health")
    assert status == 200 and health["status"] == "UP"
    assert health["dropped_entities"] == {"DAT": 1} and health["tasks_without_text"] == 1
    assert health["projects"]["3"]["labels_never_predicted"] == []
    assert TOKEN not in json.dumps(health)
    from helpers.serve import http

    for route in ("health", "v1/model"):
        status, doc = http("GET", f"{app_url}/{route}")
        assert status == 200 and doc["label_studio"]["model_version"] == setup["model_version"]


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("setup", {"project": "1.2", "schema": "<View><Text name='t' value='$t'/></View>", "access_token": TOKEN},
         422, "bad_label_config"),
        ("setup", {"project": "1.2", "schema": "<View", "access_token": TOKEN}, 422, "bad_label_config"),
        ("predict", {"tasks": [], "project": "5.1"}, 422, "bad_label_config"),
        ("predict", {"tasks": {"id": 1}, "label_config": CONFIG}, 422, "bad_shape"),
        ("predict", "[1, 2]", 422, "bad_shape"),
        ("train", {"annotations": {"id": 1}}, 422, "bad_shape"),
        ("predict", '{"tasks": [], "tasks": []}', 400, "malformed_json"),
        ("predict", "{not json", 400, "malformed_json"),
        ("webhook", {"action": "START_TRAINING", "project": {"id": 1, "label_config": CONFIG}}, 400,
         "training_off"),
    ],
)
def test_bad_requests_get_clear_4xx(app_url: str, path: str, body: Any, status: int, code: str) -> None:
    got, doc = call(app_url, path, body)
    assert got == status and doc["error"]["code"] == code, doc
    assert TOKEN not in json.dumps(doc)


def test_events_are_answered_and_utf16_projects_get_utf16_offsets(app_url: str) -> None:
    assert call(app_url, "webhook", {"action": "TASKS_CREATED", "project": {"id": 4}}) == (
        200, {"status": "ignored", "action": "TASKS_CREATED"})
    assert call(app_url, "setup", {"project": "4.1", "schema": CONFIG})[0] == 200
    start = EMOJI_TEXT.index("علی") + 1  # a Java/JavaScript tool's count
    ann = {"result": [{"from_name": "ents", "to_name": "article", "type": "labels",
                       "value": {"start": start, "end": start + 3, "text": "علی", "labels": ["PER"]}}]}
    event = {"action": "ANNOTATION_CREATED", "annotation": ann, "project": {"id": 4},
             "task": {"id": 1, "data": {"body": EMOJI_TEXT}}}
    assert call(app_url, "webhook", event) == (200, {"status": "ok"})
    _, out = call(app_url, "predict", {"tasks": [{"id": 1, "data": {"body": EMOJI_TEXT}}], "project": "4.1"})
    per = next(r for r in out["results"][0]["result"] if r["value"]["labels"] == ["PER"])
    assert per["value"]["start"] == start
    _, health = call(app_url, "health")
    assert health["projects"]["4"]["offsets"] == "utf-16" and health["projects"]["4"]["new_annotations"] == 1
    assert call(app_url, "versions")[1]["versions"] == [health["model_version"]]


# ------------------------------------------------------------------------------------------ the command


def test_serve_options_are_checked_before_the_model_loads(tmp_path: Path, capsys) -> None:
    from parsner.cli import main
    from parsner.errors import EXIT_USER_ERROR

    model = tmp_path / "model"
    model.mkdir()
    cfg = tmp_path / "retrain.yaml"
    cfg.write_text("model: tiny\nepochs: 2\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochz: 2\n", encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    url = ["--label-studio-url", "http://localhost:8080"]
    cases = [
        (["--train-config", str(cfg)], "--train-config needs --label-studio"),
        (["--label-studio", "--workers", "2"], "--workers 1"),
        (["--label-studio", "--retrain-every", "5"], "--retrain-every needs --train-config"),
        (["--label-studio", *url, "--train-config", str(tmp_path / "nope.yaml")], "no such file"),
        (["--label-studio", *url, "--train-config", str(bad)], "epochz"),
        (["--label-studio", *url, "--train-config", str(cfg), "--work-dir", str(mine)], "did not write"),
        (["--label-studio", *url, "--train-config", str(cfg), "--retrain-every", "-1"], "--retrain-every must be"),
        (["--label-map", "no-such-preset"], "label map"),
    ]
    for extra, says in cases:
        assert main(["serve", "--model", str(model), *extra]) == EXIT_USER_ERROR, extra
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_retrain_every_n_annotations_and_a_failed_export(tmp_path: Path) -> None:
    """The N-th annotation starts a round; an export that fails says so in /health, without the token and
    without the network's answer (that goes to the round's log only)."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from helpers.labelstudio import make_backend
    from helpers.serve import running_server
    from parsner.serving.server import ServeOptions, create_app

    closed = f"http://127.0.0.1:{_closed_port()}"
    backend = make_backend(tmp_path, closed, retrain_every=2)
    model, work = tmp_path / "model", tmp_path / "work"
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 5, "label_config": CONFIG}, "annotation": {"result": []},
             "task": {"id": 1, "data": {"body": "x"}}}
    with running_server(create_app(FakeTagger(), str(model), ServeOptions(), label_studio=backend)) as url:
        assert call(url, "webhook", event) == (200, {"status": "ok"})
        status, out = call(url, "webhook", event)
        assert status == 200 and out["training"]["status"] == "not started"
        assert "no access token for project 5" in out["training"]["reason"]
        assert call(url, "setup", {"project": "5.9", "schema": CONFIG, "hostname": closed,
                                   "access_token": TOKEN})[0] == 200
        status, out = call(url, "webhook", event)
        assert status == 200 and out["training"]["status"] == "started", out
        backend.retrainer.wait(30)
        _, health = call(url, "health")
    last = health["training"]["last"]
    assert last["status"] == "failed" and last["error"] == "the export could not be fetched (see rounds/0001/log.txt)"
    assert "refused" not in json.dumps(health).lower()  # no network error reaches a caller
    log = (work / "rounds" / "0001" / "log.txt").read_text(encoding="utf-8")
    assert f"{closed}/api/projects/5/export?exportType=JSON failed" in log and "refused" in log.lower()
    assert health["projects"]["5"]["new_annotations"] == 0
    assert TOKEN not in json.dumps(health)
    assert not any(TOKEN.encode() in p.read_bytes() for p in work.rglob("*") if p.is_file())


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_round_at_a_time_and_the_latest_request_waits(tmp_path: Path, monkeypatch) -> None:
    import threading

    from parsner.serving.labelstudio_training import Retrainer

    (tmp_path / "rounds").mkdir()
    retrainer = Retrainer(tmp_path, tmp_path / "retrain.yaml", None, swap=None, current=None, min_interval=0)
    gate, ran = threading.Event(), []

    def fake_round(job: dict[str, Any]) -> dict[str, Any]:
        gate.wait(10)
        ran.append(job["n"])
        return {"round": len(ran), "status": "kept"}

    monkeypatch.setattr(retrainer, "_round", fake_round)
    assert retrainer.request({"n": 1}) == "started"
    assert retrainer.request({"n": 2}) == "queued"
    assert retrainer.request({"n": 3}) == "queued"  # the newest request replaces the waiting one
    assert retrainer.status()["pending"] and retrainer.status()["state"] == "running"
    gate.set()
    retrainer.wait(10)
    assert ran == [1, 3] and retrainer.status()["state"] == "idle" and not retrainer.status()["pending"]
    assert retrainer.request({"n": 4}) == "started"
    retrainer.wait(10)
    assert ran == [1, 3, 4] and retrainer.status()["last"] == {"round": 3, "status": "kept"}


def test_task_score_orders_by_the_least_confident_word() -> None:
    """Label Studio sorts by the prediction score: 1 - the least-confident-word uncertainty, as the simulation chose;
    an entity-free task with one doubtful word still comes before a confident one with entities."""
    from types import SimpleNamespace

    from parsner.serving.preannotate import task_score, uncertainty

    sure = SimpleNamespace(entities=[{"score": 0.5}], scores=[0.99, 0.97])
    doubtful = SimpleNamespace(entities=[], scores=[0.99, 0.41, 0.95])
    assert task_score(sure) == 0.97 and task_score(doubtful) == 0.41 and task_score(doubtful) < task_score(sure)
    assert task_score(SimpleNamespace(entities=[], scores=[])) == 1.0
    assert task_score(doubtful) == round(1 - uncertainty(doubtful), 4)  # the same rule as predict --order uncertainty
