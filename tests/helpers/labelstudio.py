"""A real Label Studio server for the live-loop test: its own venv outside the clone, a fresh data folder, its
REST API; and the Persian news paragraphs of the embedded sample as tasks with gold regions."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from parsner.paths import SAMPLE_DIR

LS_VERSION = "1.23.2"
#: What a Label Studio on 127.0.0.1 needs to reach an ML backend on 127.0.0.1, offline, without telemetry.
LS_ENV = {"COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
          "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"}
STAMP = ".parsner-label-studio-venv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample_paragraphs(types: tuple[str, ...]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Each non-empty paragraph of the sample articles with its gold spans of ``types``."""
    out = []
    for line in (SAMPLE_DIR / "sample.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        pos = 0
        for para in rec["text"].split("\n"):
            a, b, pos = pos, pos + len(para), pos + len(para) + 1
            if para.strip():
                spans = [(e["start"] - a, e["end"] - a, e["label"]) for e in rec["entities"]
                         if a <= e["start"] and e["end"] <= b and e["label"] in types]
                out.append((para, spans))
    return out


class LabelStudio:
    """``label-studio start`` in its own process group; the venv is installed first when missing (in a thread,
    so the caller can train a model meanwhile)."""

    def __init__(self, root: Path, venv: Path, python: str, token: str) -> None:
        self.root, self.venv, self.python, self.token = root, venv, python, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "label-studio.log"
        self.proc: subprocess.Popen | None = None
        self.failure: str | None = None
        self.times: dict[str, float] = {}
        self._thread = threading.Thread(target=self._install_and_start, daemon=True)

    def begin(self) -> None:
        self._thread.start()

    def _install(self) -> None:
        exe = self.venv / "bin" / "label-studio"
        if (self.venv / STAMP).is_file() and exe.is_file():
            return
        if self.venv.exists() and any(self.venv.iterdir()) and not (self.venv / STAMP).is_file():
            raise RuntimeError(f"{self.venv} exists and was not made by this test; set PARSNER_LS_VENV elsewhere")
        t0 = time.time()
        self.venv.parent.mkdir(parents=True, exist_ok=True)
        with open(self.root / "pip.log", "w", encoding="utf-8") as log:
            for cmd in ([self.python, "-m", "venv", str(self.venv)],
                        [str(self.venv / "bin" / "pip"), "install", "-q", f"label-studio=={LS_VERSION}"]):
                if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=900, check=False).returncode:
                    shutil.rmtree(self.venv, ignore_errors=True)  # made by this call, half-installed
                    tail = (self.root / "pip.log").read_text(encoding="utf-8").strip().splitlines()[-1:]
                    raise RuntimeError(f"cannot install label-studio=={LS_VERSION}: {' '.join(tail)}")
        (self.venv / STAMP).write_text(LS_VERSION + "\n", encoding="utf-8")
        self.times["install_s"] = round(time.time() - t0, 1)

    def _install_and_start(self) -> None:
        try:
            self._install()
        except Exception as exc:
            self.failure = str(exc)
            return
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env.update(LS_ENV, HOME=str(self.root / "ls-home"))
        self.times["start_t"] = time.time()
        with open(self.log, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "label-studio"), "start", "--no-browser", "--data-dir",
                 str(self.root / "ls-data"), "--internal-host", "127.0.0.1", "--port", str(self.port),
                 "--username", "loop@parsner.test", "--password", "pass-word-123", "--user-token", self.token,
                 "--enable-legacy-api-token"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def wait_ready(self, timeout: float) -> None:
        """Until ``/api/version`` answers; RuntimeError with the reason when it cannot."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.failure:
                raise RuntimeError(self.failure)
            if self.proc is not None:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"label-studio exited with {self.proc.returncode}: {self._log_tail()}")
                try:
                    with urllib.request.urlopen(f"{self.url}/api/version", timeout=2):
                        self.times["start_s"] = round(time.time() - self.times["start_t"], 1)
                        return
                except (urllib.error.URLError, OSError):
                    pass
            time.sleep(0.5)
        raise AssertionError(f"label-studio did not answer within {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        return " | ".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]) \
            if self.log.is_file() else ""

    def stop(self) -> None:
        self._thread.join(timeout=900)
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def api(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201)) -> Any:
        """One REST call with ``Authorization: Token``; the parsed answer (AssertionError on another status)."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=180) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        expected = (expect,) if isinstance(expect, int) else expect
        assert status in expected, f"{method} {path} -> {status}: {raw[:500]!r}"
        return json.loads(raw) if raw.strip() else None


class Recorder:
    """A tiny HTTP server on 127.0.0.1 (loopback only) that records every request (method, path, headers) and
    answers each with ``answer`` = (status, headers, body): a stand-in Label Studio, or a host that should never
    be contacted."""

    def __init__(self, answer: tuple[int, dict[str, str], bytes] = (200, {}, b"[]")) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.answer = answer
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                recorder.requests.append((self.command, self.path, dict(self.headers.items())))
                status, headers, body = recorder.answer
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Recorder:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorizations(self) -> list[str]:
        return [h.get("Authorization", "") for _m, _p, h in self.requests if h.get("Authorization")]


def make_backend(tmp_path: Path, url: str | None = None, **opts: Any) -> Any:
    """A Label Studio backend with retraining on: a stand-in model folder, a tiny config, a fresh work folder."""
    from parsner.serving.labelstudio_backend import LabelStudioBackend, LabelStudioOptions
    from parsner.serving.labelstudio_training import prepare_work_dir

    model, work = tmp_path / "model", tmp_path / "work"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    cfg = tmp_path / "retrain.yaml"
    cfg.write_text("model: tiny\n", encoding="utf-8")
    prepare_work_dir(work, model)
    return LabelStudioBackend(model, LabelStudioOptions(train_config=cfg, work_dir=work, label_studio_url=url, **opts))


# ------------------------------------------------------------------- a labeling config and a stand-in tagger

CONFIG = ('<View><Labels name="ents" toName="article"><Label value="PER"/><Label value="Location"/>'
          '<Label value="ORG"/></Labels><Text name="article" value="$body"/></View>')
EMOJI_TEXT = "😀 علی دیروز به تهران رفت."  # an astral character before the entities
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def entity_at(text: str, mention: str, label: str) -> dict[str, Any]:
    start = text.index(mention)
    return {"start": start, "end": start + len(mention), "label": label, "text": mention, "score": 0.91234}


class FakeTagger:
    """Finds a fixed lexicon in the text (offsets as the Tagger gives them: code points into the text)."""

    def __init__(self) -> None:
        self.lexicon = {"علی": "PER", "تهران": "LOC", "سازمان ملل": "ORG", "دیروز": "DAT"}
        self.labels = ["DAT", "LOC", "ORG", "PER"]
        self.meta: dict[str, Any] = {"model": "fake"}
        self.normalizer = None
        self.id2label = {0: "O"}
        self.max_length = 128
        self.runner = SimpleNamespace(backend="fake", config=SimpleNamespace(architectures=["Fake"]))

    def tag_documents(self, texts: list[str], batch_size: int = 32) -> list[Any]:
        out = []
        for text in texts:
            ents = [entity_at(text, m, lab) for m, lab in self.lexicon.items() if m in text]
            out.append(SimpleNamespace(text=text, entities=ents, scores=[0.8] if text else []))
        return out
