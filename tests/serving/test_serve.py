"""``parsner serve``: the API contract, limits and errors, micro-batching, and the command itself."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'parsner[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'parsner[serve]')")

from helpers.serve import TEXTS, bearer, http, running_server, train_tiny_run, wait_for_health
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR
from parsner.serving.render import entity_record
from parsner.serving.server import ServeOptions, create_app


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def tagger(run_dir: Path):
    from parsner.inference.tagger import Tagger

    return Tagger.from_pretrained(run_dir, device="cpu")


OPTS = ServeOptions(max_body_bytes=20_000, max_texts=4, max_chars=500, batch_window_ms=20)


@pytest.fixture(scope="module")
def server(tagger, run_dir: Path):
    with running_server(create_app(tagger, str(run_dir), OPTS)) as url:
        yield url


@pytest.mark.slow
def test_health_and_model_info(server: str) -> None:
    status, body = http("GET", f"{server}/health")
    assert status == 200 and body["status"] == "ok" and body["backend"] == "torch"
    status, info = http("GET", f"{server}/v1/model")
    assert status == 200
    assert info["labels"] == ["LOC", "ORG", "PER"]
    assert info["tags"][0] == "O" and "B-PER" in info["tags"]
    assert info["base_model"] == "tiny"
    assert "stand-in" in info["stand_in"]
    assert info["metrics"]["metrics"]["f1_strict"] > 0.9  # the run's validation metrics
    assert info["normalizer"]["config"]["zwnj"] is True
    assert info["limits"] == {"max_body_bytes": 20_000, "max_texts": 4, "max_chars": 500}


def test_ner_returns_the_taggers_entities(server: str, tagger) -> None:
    status, body = http("POST", f"{server}/v1/ner", {"text": TEXTS[1]})
    assert status == 200
    assert body == {"entities": [entity_record(e) for e in tagger(TEXTS[1])]}
    assert ("مریم احمدی", "PER") in {(e["text"], e["label"]) for e in body["entities"]}
    status, body = http("POST", f"{server}/v1/ner", {"texts": [*TEXTS, ""]})
    assert status == 200 and len(body["results"]) == 4
    for text, res in zip([*TEXTS, ""], body["results"], strict=True):
        assert res["entities"] == [entity_record(e) for e in tagger(text)]
        for e in res["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]  # offsets into the text as sent (ZWNJ, digits)
    assert http("POST", f"{server}/v1/ner", {"texts": []}) == (200, {"results": []})


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ('{"text": ', 400, "malformed_json"),
        (b'{"text": "\xff\xfe"}', 400, "malformed_json"),
        ("[1, 2]", 422, "bad_shape"),
        ('{"txt": "x"}', 422, "bad_shape"),
        ('{"text": "x", "texts": ["y"]}', 422, "bad_shape"),
        ('{"text": 5}', 422, "bad_shape"),
        ('{"texts": "x"}', 422, "bad_shape"),
        ('{"texts": ["a", null]}', 422, "bad_shape"),
        ('{"texts": ["a", "b", "c", "d", "e"]}', 422, "too_many_texts"),
        ('{"text": "' + "ب" * 501 + '"}', 422, "text_too_long"),
        ('{"text": "' + "a" * 20_001 + '"}', 413, "body_too_large"),
        ('{"text": "\\ud800 x"}', 422, "invalid_text"),  # a lone surrogate: refused, not replaced
        ('{"texts": ["x", "\\udc00"]}', 422, "invalid_text"),
        ('{"te\\ud800xt": "x"}', 422, "bad_shape"),  # and the error answer itself is sendable JSON
    ],
)
def test_bad_requests_get_clear_json_errors(server: str, body, status: int, code: str) -> None:
    got, err = http("POST", f"{server}/v1/ner", body, headers={"Content-Type": "application/json"})
    assert got == status, err
    assert err["error"]["status"] == status and err["error"]["code"] == code and err["error"]["message"]
    assert http("GET", f"{server}/health")[0] == 200  # the worker survives


def test_chunked_body_over_the_limit_is_refused(server: str) -> None:
    parts = urlparse(server)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=30)
    chunk = b"a" * 8192
    conn.putrequest("POST", "/v1/ner")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Authorization", bearer(server)["Authorization"])
    conn.endheaders()
    try:
        for _ in range(4):  # 32 KiB > 20,000 bytes, no Content-Length to go by
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before the whole body is sent
    resp = conn.getresponse()
    assert resp.status == 413 and b"body_too_large" in resp.read()
    conn.close()


def test_unknown_route_and_method_are_json(server: str) -> None:
    assert http("GET", f"{server}/nope")[0] == 404
    status, body = http("GET", f"{server}/v1/ner")
    assert status == 405 and body["error"]["status"] == 405


def test_concurrent_requests_are_micro_batched(server: str, tagger) -> None:
    _, before = http("GET", f"{server}/health")
    texts = [f"{TEXTS[i % 3]} {i}" for i in range(24)]
    answers: dict[int, tuple] = {}
    barrier = threading.Barrier(len(texts))

    def client(i: int) -> None:
        barrier.wait(timeout=30)
        answers[i] = http("POST", f"{server}/v1/ner", {"text": texts[i]})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == len(texts)  # every request answered
    for i, text in enumerate(texts):
        assert answers[i] == (200, {"entities": [entity_record(e) for e in tagger(text)]})
    _, after = http("GET", f"{server}/health")
    assert after["requests"] - before["requests"] == len(texts)
    assert after["batches"] - before["batches"] < len(texts)  # some requests shared a model call


def test_a_failing_request_does_not_take_others_down(tagger, run_dir: Path) -> None:
    class Flaky:
        """The real tagger, except that a text containing BOOM makes it raise."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

        def tag_documents(self, texts, batch_size=32):
            if any("BOOM" in t for t in texts):
                raise RuntimeError("simulated model failure")
            return self.inner.tag_documents(texts, batch_size=batch_size)

    opts = ServeOptions(batch_window_ms=100)
    with running_server(create_app(Flaky(tagger), str(run_dir), opts)) as url:
        results: dict[str, tuple] = {}

        def client(text: str) -> None:
            results[text] = http("POST", f"{url}/v1/ner", {"text": text})

        threads = [threading.Thread(target=client, args=(t,)) for t in ["BOOM", TEXTS[0], TEXTS[2]]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        status, body = results["BOOM"]
        assert status == 500 and "simulated model failure" in body["error"]["message"]
        assert results[TEXTS[0]][0] == 200 and results[TEXTS[2]][0] == 200
        assert http("POST", f"{url}/v1/ner", {"text": TEXTS[0]})[0] == 200


def test_the_page_is_self_contained(server: str) -> None:
    status, page = http("GET", f"{server}/")
    assert status == 200 and page.startswith("<!DOCTYPE html>")
    assert 'dir="rtl"' in page and "<textarea" in page and 'class="legend"' in page
    assert "http://" not in page and "https://" not in page and "<link" not in page  # no CDN


def test_serve_command_errors(tmp_path: Path, capsys) -> None:
    assert main(["serve", "--model", str(tmp_path / "missing")]) == EXIT_USER_ERROR
    assert "not found" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path), "--port", "0"]) == EXIT_USER_ERROR
    assert "--port" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_command_runs_an_onnx_export_on_localhost(run_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the ONNX extra is not installed")
    import socket

    from helpers.serve import export

    onnx_dir = export(run_dir, tmp_path / "onnx")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "t" * 24
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PARSNER_TOKEN": token}
    auth = {"Authorization": f"Bearer {token}"}
    proc = subprocess.Popen([sys.executable, "-m", "parsner", "serve", "--model", str(onnx_dir), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_health(url)
        assert http("GET", f"{url}/v1/model")[0] == 401
        status, info = http("GET", f"{url}/v1/model", headers=auth)
        assert status == 200 and info["backend"] == "onnx"
        status, body = http("POST", f"{url}/v1/ner", {"text": TEXTS[0]}, headers=auth)
        assert status == 200 and ("تهران", "LOC") in {(e["text"], e["label"]) for e in body["entities"]}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"127.0.0.1:{port}" in err  # it says where it listens: localhost by default
    assert token not in err  # a token the operator set is not echoed to the terminal
