"""Who may use ``parsner serve``: credentials on every route but ``/health``, as Label Studio, scripts and the
page send them; no cross-site requests; strict JSON bodies; and the command's access options.

A real uvicorn server on 127.0.0.1 around the real app, with a lexicon tagger in place of a model (the routes and
the middleware are what is tested; tests/serving/test_serve.py covers the model behind them).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'parsner[serve]')")

from helpers.serve import http, running_server, wait_for_health
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR
from parsner.serving.auth import ServerAuth
from parsner.serving.server import ServeOptions, create_app

TOKEN = "s3cret-token-for-tests-0123456789"
TEXT = "علی دیروز به تهران رفت."
NER = {"text": TEXT}


class LexiconTagger:
    """Finds two words; enough for the routes to answer with entities."""

    def __init__(self) -> None:
        self.labels, self.meta, self.normalizer = ["LOC", "PER"], {"model": "lexicon"}, None
        self.id2label, self.max_length = {0: "O"}, 128
        self.runner = SimpleNamespace(backend="lexicon", config=SimpleNamespace(architectures=["Lexicon"]))

    def tag_documents(self, texts: list[str], batch_size: int = 32) -> list[Any]:
        out = []
        for text in texts:
            ents = [{"start": text.index(w), "end": text.index(w) + len(w), "label": lab, "text": w, "score": 0.9}
                    for w, lab in (("علی", "PER"), ("تهران", "LOC")) if w in text]
            out.append(SimpleNamespace(text=text, entities=ents, scores=[0.9]))
        return out


def _app(tmp_path: Path, auth: ServerAuth | None) -> Any:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    return create_app(LexiconTagger(), str(model), ServeOptions(), auth=auth)


@pytest.fixture()
def url(tmp_path: Path):
    with running_server(_app(tmp_path, ServerAuth(TOKEN, allowed_origins=("https://annotate.example",)))) as base:
        yield base


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_every_route_but_health_needs_credentials(url: str) -> None:
    for method, path, body in (("POST", "/v1/ner", NER), ("GET", "/v1/model", None), ("GET", "/", None)):
        status, err = http(method, url + path, body, auth=False)
        assert status == 401, (path, err)
        assert err["error"]["code"] == "unauthorized"
    status, health = http("GET", f"{url}/health", auth=False)
    assert status == 200 and health == {"status": "ok"}  # up/down only: no counters, backend or paths
    status, full = http("GET", f"{url}/health")
    assert status == 200 and full["backend"] == "lexicon" and "requests" in full


def test_bearer_basic_and_wrong_credentials(url: str) -> None:
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert http("POST", f"{url}/v1/ner", NER, headers=ok)[1]["entities"][0]["text"] == "علی"
    assert http("POST", f"{url}/v1/ner", NER, headers=_basic("parsner", TOKEN))[0] == 200  # Label Studio's form
    for headers in ({"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
                    _basic("someone", TOKEN), _basic("parsner", "wrong"), {"Authorization": "Basic %%%"},
                    {"Authorization": f"Token {TOKEN}"}, {"Cookie": f"parsner_x={TOKEN}"}):
        status, err = http("POST", f"{url}/v1/ner", NER, headers=headers, auth=False)
        assert status == 401, headers
        assert TOKEN not in json.dumps(err)


def test_unauthorised_answer_asks_for_basic_auth(url: str) -> None:
    conn = HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=10)
    conn.request("GET", "/v1/model")
    resp = conn.getresponse()
    assert resp.status == 401 and resp.getheader("WWW-Authenticate", "").startswith("Basic")
    conn.close()


def test_the_token_url_sets_a_strict_cookie_that_opens_the_page(url: str) -> None:
    host, port = urlparse(url).hostname, urlparse(url).port
    conn = HTTPConnection(host, port, timeout=10)
    conn.request("GET", f"/?token={TOKEN}")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 303 and resp.getheader("Location") == "/"  # the token leaves the address bar
    cookie = resp.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    pair = cookie.split(";")[0]
    status, page = http("GET", f"{url}/", headers={"Cookie": pair}, auth=False)
    assert status == 200 and page.startswith("<!DOCTYPE html>")
    status, body = http("POST", f"{url}/v1/ner", NER, headers={"Cookie": pair}, auth=False)
    assert status == 200 and len(body["entities"]) == 2
    conn.request("GET", "/?token=wrong-token-000000000")
    resp = conn.getresponse()
    assert resp.status == 401 and resp.getheader("Set-Cookie") is None
    conn.close()


def test_a_browser_style_cross_site_request_is_refused(url: str) -> None:
    """A hostile page can POST text/plain to localhost without a preflight; neither the type nor the Origin pass."""
    body = json.dumps(NER, ensure_ascii=False)
    # With the token (as a cached basic-auth login would send it), still refused.
    for headers, code in (({"Content-Type": "text/plain", "Origin": "http://evil.example"}, 403),
                          ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403),
                          ({"Content-Type": "text/plain"}, 415),
                          ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
                          ({"Content-Type": "multipart/form-data; boundary=x"}, 415)):
        status, err = http("POST", f"{url}/v1/ner", body, headers=headers)
        assert status == code, (headers, err)
    own = {"Origin": url, "Content-Type": "application/json; charset=utf-8"}
    assert http("POST", f"{url}/v1/ner", body, headers=own)[0] == 200  # the page's own requests
    assert http("POST", f"{url}/v1/ner", body, headers={"Origin": "https://annotate.example"})[0] == 200


@pytest.mark.parametrize(("body", "says"), [
    ("[" * 200_000, "nested deeper than 64"),
    ('{"text": "a", "text": "b"}', "duplicate key"),
    (b'{"text": "\xff"}', "not UTF-8"),
    ('{"text": ', "malformed JSON"),
])
def test_hostile_json_bodies_get_a_clear_400(url: str, body: str | bytes, says: str) -> None:
    status, err = http("POST", f"{url}/v1/ner", body)
    assert status == 400 and says in err["error"]["message"], err
    assert http("GET", f"{url}/health")[0] == 200  # and the server serves on


def test_an_app_built_without_credentials_trusts_nobody(tmp_path: Path) -> None:
    app = _app(tmp_path, None)
    assert app.state.auth.enabled and len(app.state.auth.token) >= 32
    with running_server(app) as base:
        assert http("POST", f"{base}/v1/ner", NER, auth=False)[0] == 401
        assert http("POST", f"{base}/v1/ner", NER)[0] == 200


def test_auth_off_opens_the_routes_but_keeps_the_cross_site_rules(tmp_path: Path) -> None:
    with running_server(_app(tmp_path, ServerAuth.off())) as base:
        assert http("POST", f"{base}/v1/ner", NER, auth=False)[0] == 200
        assert http("GET", f"{base}/health", auth=False)[1]["backend"] == "lexicon"
        assert http("POST", f"{base}/v1/ner", NER, headers={"Origin": "http://evil.example"})[0] == 403
        assert http("POST", f"{base}/v1/ner", json.dumps(NER), headers={"Content-Type": "text/plain"})[0] == 415


@pytest.mark.parametrize(("argv", "says"), [
    (["--token-file", "{missing}"], "--token-file"),
    (["--token-file", "{short}"], "at least 16"),
    (["--token-file", "{empty}"], "empty"),
    (["--no-auth", "--token-file", "{short}"], "contradict"),
    (["--allow-origin", "evil.example"], "--allow-origin"),
    (["--allow-origin", "http://x.example/path"], "--allow-origin"),
    (["--auth-user", "a:b"], "--auth-user"),
])
def test_bad_access_options_fail_before_the_model_loads(tmp_path: Path, capsys, argv: list[str], says: str) -> None:
    (tmp_path / "short").write_text("abc\n", encoding="utf-8")
    (tmp_path / "empty").write_text("", encoding="utf-8")
    files = {"missing": tmp_path / "nope", "short": tmp_path / "short", "empty": tmp_path / "empty"}
    argv = [a.format(**files) for a in argv]
    assert main(["serve", "--model", str(tmp_path / "no-model"), *argv]) == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_workers_share_the_operator_token(tmp_path: Path, monkeypatch) -> None:
    """With --workers N each uvicorn worker builds its app from the environment, with the same credentials."""
    from dataclasses import asdict

    from parsner.serving import server

    auth = ServerAuth(TOKEN, "annotator", ("http://a.example",))
    monkeypatch.setenv("PARSNER_SERVE", json.dumps({"model": "m", "backend": None, "options": {},
                                                    "label_map": None, "auth": asdict(auth)}))
    monkeypatch.setattr("parsner.inference.tagger.Tagger.from_pretrained", lambda *a, **k: LexiconTagger())
    assert server.app_from_env().state.auth == auth


@pytest.mark.slow
def test_serve_makes_a_token_prints_how_to_use_it_and_refuses_strangers(tmp_path: Path) -> None:
    """``parsner serve`` with no token configured: a new one, printed as page URL, bearer header and basic auth."""
    import socket

    from helpers.serve import train_tiny_run

    run = train_tiny_run(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "PARSNER_TOKEN"} | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "parsner", "serve", "--model", str(run), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base, lines = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Label Studio (Connect model" in ln for ln in lines):
            lines.append(proc.stderr.readline())
        token = next(ln for ln in lines if "?token=" in ln).split("?token=")[1].strip()
        assert any(f"Bearer {token}" in ln for ln in lines) and any(f"password {token}" in ln for ln in lines)
        wait_for_health(base)
        assert http("POST", f"{base}/v1/ner", NER, auth=False)[0] == 401
        assert http("POST", f"{base}/v1/ner", NER, headers={"Authorization": f"Bearer {token}"})[0] == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_no_auth_is_said_on_stderr(tmp_path: Path) -> None:
    from parsner.cli.serve import _say_access

    args = SimpleNamespace(host="0.0.0.0", token_file=None)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        _say_access(ServerAuth.off(), "http://0.0.0.0:8000/", args)
    assert "authentication is OFF" in err.getvalue() and "beyond this machine" in err.getvalue()
