"""A tiny model trained in seconds on synthetic Persian NER data, and its ONNX exports (ONNX/serve tests)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.train import make_sentences, run_cli, save_dataset, tiny_config

#: Written for these tests: Persian with ZWNJ, Persian and ASCII digits, and entities the model learns.
TEXTS = [
    "حمید رحمانی به تهران رفت.",
    "مریم احمدی با سازمان ملل دیدار کرد و در سال ۱۴۰۰ به اصفهان رفت.",
    "خبرگزاری‌ها در کرمان گفت که بانک مرکزی در سال 1399 به مسقط رفت؛ علی می‌شود.",
]


def train_tiny_run(root: Path) -> Path:
    """Train the tiny stand-in on synthetic sentences (about 10 s); returns the run directory."""
    data = save_dataset(root / "data", {"train": make_sentences(96, 1), "validation": make_sentences(24, 2),
                                        "test": make_sentences(40, 3)})
    config = tiny_config(root / "run.yaml", data, epochs=8)
    out = root / "run"
    res = run_cli(["train", "--config", str(config), "--out", str(out)])
    assert res.returncode == 0, res.stderr[-2000:]
    return out


def export(run: Path, out: Path, quantize: str | None = None) -> Path:
    from parsner.inference.export import export_onnx

    export_onnx(run, out, quantize=quantize)
    return out


#: The credentials of each server :func:`running_server` started, by base URL, for :func:`http` to send.
_TOKENS: dict[str, str | None] = {}


@contextlib.contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(400):  # bounded: 20 s
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "server did not start"
    base = f"http://127.0.0.1:{port}"
    auth = getattr(app.state, "auth", None)
    _TOKENS[base] = auth.token if auth is not None else None
    try:
        yield base
    finally:
        _TOKENS.pop(base, None)
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def wait_for_health(url: str, seconds: float = 30) -> None:
    """Wait (bounded) until a server started in a subprocess answers ``GET /health``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http("GET", f"{url}/health", timeout=2)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer /health within {seconds:.0f} s")


def bearer(url: str) -> dict[str, str]:
    """The ``Authorization`` header of the :func:`running_server` serving ``url``."""
    token = next(t for base, t in _TOKENS.items() if url == base or url.startswith(base + "/"))
    return {"Authorization": f"Bearer {token}"}


def http(method: str, url: str, body: bytes | str | dict | None = None, timeout: float = 30,
         headers: dict[str, str] | None = None, auth: bool = True) -> tuple[int, Any]:
    """``(status, parsed JSON or text)`` of one request; HTTP errors are returned, not raised.

    A body goes as ``application/json`` and, with ``auth``, a server from :func:`running_server` gets its
    bearer token, unless ``headers`` set those themselves.
    """
    import urllib.error
    import urllib.request

    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False)
    data = body.encode("utf-8") if isinstance(body, str) else body
    sent = {k.lower(): v for k, v in (headers or {}).items()}
    if data is not None:
        sent.setdefault("content-type", "application/json")
    token = next((t for base, t in _TOKENS.items() if url.startswith(base + "/")), None)
    if auth and token is not None:
        sent.setdefault("authorization", f"Bearer {token}")
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        status, raw, ctype = err.code, err.read(), err.headers.get("content-type", "")
    text = raw.decode("utf-8")
    return status, json.loads(text) if "json" in ctype else text
