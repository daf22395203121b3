"""``parsner serve``: the Tagger behind an HTTP API (FastAPI + uvicorn) with a page to try it.

Routes:

* ``POST /v1/ner`` — ``{"text": "..."}`` -> ``{"entities": [...]}``, or ``{"texts": [...]}`` ->
  ``{"results": [{"entities": [...]}, ...]}``; entities are the Tagger's (``text``, ``label``, ``start``,
  ``end`` as offsets into the text sent, ``score``).
* ``GET /health``, ``GET /v1/model`` (labels, base model, normaliser, stand-in warning, metrics), ``GET /``
  (the page, :mod:`parsner.serving.page`).
* With ``--label-studio``: Label Studio's ML-backend API under ``/label-studio/``
  (:mod:`parsner.serving.labelstudio_backend`).

Every route but ``GET /health`` needs credentials, and cross-site requests are refused
(:mod:`parsner.serving.auth`: 401, 403, and 415 for a body not declared ``application/json``).

Concurrent requests are micro-batched (:class:`MicroBatcher`): every request waiting when the inference
thread is free is tagged in one Tagger call (the Tagger sorts and pads all their windows together), up to
``max_batch_texts`` texts; ``batch_window_ms`` > 0 also waits that long for company (slower here under load:
eval/RESULTS.md). ``max_batch_texts=1`` gives one request at a time. Every error is a JSON
``{"error": {"status", "code", "message"}}``: malformed JSON (or nested past 64 levels, or a key twice) 400, a
body over the limit 413, a wrong shape, too many texts, too long a text or a text holding a lone surrogate
(``"\\ud800"``: refused, not replaced, so that offsets and entity texts stay those of the text sent) 422, a full
queue 503; a failure inside the model answers 500 and the worker keeps serving.
"""


import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parsner import surrogates
from parsner.data.strictjson import JSONRefused, loads
from parsner.serving.auth import AuthMiddleware, ServerAuth, is_authenticated
from parsner.serving.render import entity_record


@dataclass
class ServeOptions:
    max_body_bytes: int = 1_000_000
    max_texts: int = 64  # texts per request
    max_chars: int = 100_000  # characters per text
    max_batch_texts: int = 64  # texts per model call (micro-batch); 1 = no batching
    # How long the first waiting request waits for company. 0 (measured best, eval/RESULTS.md): no waiting;
    # a batch is whatever arrived while the previous model call ran, which grows with the load.
    batch_window_ms: float = 0.0
    max_queued_texts: int = 4096  # beyond this, 503 (busy) instead of an ever-growing queue
    batch_size: int = 64  # the Tagger's batch_size (windows per forward pass)
    # Entities scored below this (after the model's calibration) are left out of answers, /v1/ner and Label
    # Studio's alike (`serve --min-score`); a /v1/ner request may send its own "min_score".
    min_score: float = 0.0


class ApiError(Exception):
    """An answer ``{"error": {"status", "code", "message"}}`` with ``status``, and ``headers`` (e.g. Retry-After)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class MicroBatcher:
    """Groups concurrent requests into one Tagger call; inference runs on one worker thread."""

    def __init__(self, tagger: Any, options: ServeOptions) -> None:
        self.tagger, self.opts = tagger, options
        self.queue: asyncio.Queue[tuple[list[str], asyncio.Future]] = asyncio.Queue()
        self.queued_texts = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parsner-infer")
        self.stats = {"requests": 0, "batches": 0, "texts": 0, "errors": 0}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, texts: list[str]) -> list[Any]:
        if self.queued_texts + len(texts) > self.opts.max_queued_texts:
            raise ApiError(503, "busy", f"more than {self.opts.max_queued_texts} texts are waiting; retry later")
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.queued_texts += len(texts)
        await self.queue.put((texts, fut))
        return await fut

    async def _collect(self) -> list[tuple[list[str], asyncio.Future]]:
        group = [await self.queue.get()]
        n = len(group[0][0])
        deadline = time.monotonic() + self.opts.batch_window_ms / 1000
        while n < self.opts.max_batch_texts:
            if self.queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
            else:
                item = self.queue.get_nowait()
            group.append(item)
            n += len(item[0])
        return group

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = await self._collect()
            texts = [t for item, _ in group for t in item]
            self.queued_texts -= len(texts)
            try:
                docs = await loop.run_in_executor(self.executor, self._tag, texts)
            except Exception:
                # One bad request must not fail the others: retry each on its own.
                for item, fut in group:
                    try:
                        self._resolve(fut, await loop.run_in_executor(self.executor, self._tag, item))
                    except Exception as exc:
                        self.stats["errors"] += 1
                        if not fut.done():
                            fut.set_exception(exc)
                continue
            self.stats["batches"] += 1
            self.stats["texts"] += len(texts)
            k = 0
            for item, fut in group:
                self._resolve(fut, docs[k : k + len(item)])
                k += len(item)

    def _tag(self, texts: list[str]) -> list[Any]:
        return self.tagger.tag_documents(texts, batch_size=self.opts.batch_size) if texts else []

    def _resolve(self, fut: asyncio.Future, docs: list[Any]) -> None:
        self.stats["requests"] += 1
        if not fut.done():  # the client may have gone away
            fut.set_result(docs)


# ------------------------------------------------------------------------------------------- requests


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, "body_too_large", f"request body of {declared} bytes exceeds the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_ner_request(body: bytes, opts: ServeOptions) -> tuple[list[str], bool]:
    """``(texts, single)`` from a ``{"text"}`` or ``{"texts"}`` body, or an :class:`ApiError`."""
    texts, single, _ = ner_request(body, opts)
    return texts, single


def ner_request(body: bytes, opts: ServeOptions) -> tuple[list[str], bool, float]:
    """``(texts, single, min_score)`` from a ``{"text"}`` or ``{"texts"}`` body with an optional ``"min_score"``
    (0 to 1; default the server's ``--min-score``), or an :class:`ApiError`."""
    try:
        doc = loads(body)
    except JSONRefused as exc:
        raise ApiError(400, "malformed_json", f"body refused: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(422, "bad_shape", 'send a JSON object: {"text": "..."} or {"texts": ["...", ...]}')
    keys = set(doc) - {"min_score"}
    if keys not in ({"text"}, {"texts"}):
        raise ApiError(422, "bad_shape", f'send exactly one of "text" or "texts" (got keys {sorted(keys)})')
    single = "text" in doc
    texts = [doc["text"]] if single else doc["texts"]
    if not isinstance(texts, list):
        raise ApiError(422, "bad_shape", '"texts" must be a list of strings')
    if len(texts) > opts.max_texts:
        raise ApiError(422, "too_many_texts", f"{len(texts)} texts in one request; the limit is {opts.max_texts}")
    for i, text in enumerate(texts):
        where = '"text"' if single else f'"texts"[{i}]'
        if not isinstance(text, str):
            raise ApiError(422, "bad_shape", f"{where} is {type(text).__name__}, not a string")
        if len(text) > opts.max_chars:
            raise ApiError(422, "text_too_long", f"{where} has {len(text)} characters; the limit is {opts.max_chars}")
        why = surrogates.problem(text)  # refused, not replaced: parsner.surrogates says why
        if why is not None:
            raise ApiError(422, "invalid_text", f"{where} holds {why}; send whole characters")
    min_score = opts.min_score
    if "min_score" in doc:
        from parsner.inference.calibration import check_min_score

        try:
            min_score = check_min_score(doc["min_score"], '"min_score"')
        except ValueError as exc:
            raise ApiError(422, "bad_min_score", str(exc)) from None
    return texts, single, min_score


def model_info(tagger: Any, model_dir: str, opts: ServeOptions) -> dict[str, Any]:
    """What ``GET /v1/model`` reports: labels, base model, normaliser, stand-in warning, metrics."""
    meta = dict(tagger.meta)
    path = Path(model_dir)
    metrics = None
    if (path / "metrics.json").is_file():
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    normalizer = None
    if tagger.normalizer is not None:
        normalizer = json.loads((path / "normalizer.json").read_text(encoding="utf-8")) if (
            path / "normalizer.json").is_file() else {"config": asdict(tagger.normalizer.config)}
    config = tagger.runner.config
    base = meta.get("base_model") or meta.get("model")
    stand_in = meta.get("stand_in_description") or meta.get("stand_in") or None
    if stand_in is True:
        stand_in = "stand-in model (random init): scores are NOT those of a pretrained model"
    return {
        "model_dir": str(path.resolve()) if path.exists() else model_dir,
        "backend": tagger.runner.backend,
        "quantize": (meta.get("onnx") or {}).get("quantize"),
        "labels": tagger.labels,
        "tags": [tagger.id2label[i] for i in sorted(tagger.id2label)],
        "base_model": base,
        "architecture": (getattr(config, "architectures", None) or [None])[0],
        "stand_in": stand_in,
        "normalizer": normalizer,
        "max_length": tagger.max_length,
        "metrics": metrics,
        "limits": {"max_body_bytes": opts.max_body_bytes, "max_texts": opts.max_texts,
                   "max_chars": opts.max_chars},
        "batching": {"max_batch_texts": opts.max_batch_texts, "batch_window_ms": opts.batch_window_ms},
        "min_score": opts.min_score,
        "calibrated": getattr(tagger, "calibrator", None) is not None,
    }


def create_app(tagger: Any, model_dir: str, options: ServeOptions | None = None, label_studio: Any = None,
               auth: ServerAuth | None = None) -> Any:
    """The FastAPI application serving ``tagger`` (and, given a ``LabelStudioBackend``, its routes).

    ``auth`` says who may use it (:mod:`parsner.serving.auth`); by default a new random token that only
    ``app.state.auth`` knows, so an app built without one refuses every caller rather than trusting all.
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from parsner.serving.page import page_html

    opts = options or ServeOptions()
    batcher = MicroBatcher(tagger, opts)
    info = model_info(tagger, model_dir, opts)
    page = page_html(tagger.labels, stand_in=info["stand_in"], min_score=opts.min_score,
                     calibrated=info.get("calibrated", False))

    @asynccontextmanager
    async def lifespan(_app: Any):
        batcher.start()
        yield
        if label_studio is not None:
            label_studio.shutdown()
        await batcher.stop()

    app = FastAPI(title="ParsNER", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.state.auth = auth or ServerAuth.generate()
    app.add_middleware(AuthMiddleware, auth=app.state.auth)
    extra = (lambda: {"label_studio": label_studio.status()}) if label_studio is not None else dict

    def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"status": status, "code": code, "message": message}}, status_code=status,
                            headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(_req: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, "bad_shape", str(exc))

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        # Open to any caller, so without credentials it says only up/down and the model version.
        version = {"model_version": label_studio.version} if label_studio is not None else {}
        if not is_authenticated(request):
            return {"status": "ok", **version}
        return {"status": "ok", **version, "backend": info["backend"], "queued_texts": batcher.queued_texts,
                **batcher.stats, **extra()}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return {**info, **extra()}

    @app.post("/v1/ner")
    async def ner(request: Request) -> JSONResponse:
        texts, single, min_score = ner_request(await read_body(request, opts.max_body_bytes), opts)
        try:
            docs = await batcher.submit(texts)
        except ApiError:
            raise
        except Exception as exc:
            return error(500, "model_error", f"tagging failed: {type(exc).__name__}: {exc}")
        results = [{"entities": [entity_record(e) for e in d.entities if e["score"] >= min_score]} for d in docs]
        return JSONResponse(results[0] if single else {"results": results})

    if label_studio is not None:
        label_studio.attach(app, batcher, info)
    return app


def app_from_env() -> Any:
    """Factory for ``uvicorn --workers N``: each worker process loads the model named in the environment."""
    import os

    from parsner.inference.tagger import Tagger

    cfg = json.loads(os.environ["PARSNER_SERVE"])
    tagger = Tagger.from_pretrained(cfg["model"], device="cpu", backend=cfg.get("backend"),
                                    label_map=cfg.get("label_map"))
    auth = ServerAuth(**{**cfg["auth"], "allowed_origins": tuple(cfg["auth"]["allowed_origins"])})
    return create_app(tagger, cfg["model"], ServeOptions(**cfg["options"]), auth=auth)
