"""The ``/label-studio/*`` routes of ``parsner serve`` (see :mod:`parsner.serving.labelstudio_backend` for the protocol;
``ls`` is its ``LabelStudioBackend``, which adds these routes).

Errors are the server's JSON ``{"error": {"status", "code", "message"}}``; no message ever repeats a request
body (setup's holds the project's access token). The server's middleware (:mod:`parsner.serving.auth`) lets
only callers with credentials reach every route here but ``GET health``, which says more to those
(:func:`parsner.serving.auth.is_authenticated`). No ``from __future__ import annotations`` here: FastAPI reads
the handlers' ``Request`` annotation at definition time.
"""

import logging
from typing import Any

from parsner import surrogates
from parsner.serving.labelstudio_protocol import LabelConfigError, parse_labeling_config, project_id

log = logging.getLogger(__name__)

PREFIX = "/label-studio"
#: Label Studio sends every selected task in one predict call: a larger body limit than /v1/ner's.
MAX_BODY_BYTES = 200_000_000
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
#: What a task parsner could not tag says in its result's "skipped" key (the counter it adds to).
NOT_TAGGED = "the model could not tag this text (see the server log)"


def task_texts(ls: Any, tasks: list[Any], key: str, max_chars: int) -> tuple[list[str | None], list[str | None]]:
    """Each task's text (``data[key]``) and None as its reason, or None and why it is not tagged (counted): no
    text field, too long, or a lone surrogate (which the Tagger refuses: it would fail the whole batch)."""
    texts: list[str | None] = []
    reasons: list[str | None] = []
    for task in tasks:
        data = task.get("data") if isinstance(task, dict) else None
        text = data.get(key) if isinstance(data, dict) else None
        why, counter = None, None
        if not isinstance(text, str):
            why, counter = f"the task has no text field {key[:64]!r}", "tasks_without_text"
        elif len(text) > max_chars:
            why, counter = f"the text has {len(text)} characters; the limit is {max_chars}", "tasks_too_long"
        else:
            problem = surrogates.problem(text)
            if problem is not None:
                why, counter = f"the text holds {problem}", "tasks_invalid_text"
        if counter is not None:
            ls.counters[counter] += 1
        texts.append(text if why is None else None)
        reasons.append(why)
    return texts, reasons


async def _tag_chunk(batcher: Any, chunk: list[str]) -> list[Any]:
    """The chunk's documents; when the model fails on the chunk, each text alone, None where it fails again
    (so one text the model chokes on leaves the others their predictions). All failing: 500."""
    from parsner.serving.server import ApiError

    try:
        return list(await batcher.submit(chunk))
    except ApiError:
        raise
    except Exception as exc:
        first = exc
    docs: list[Any] = []
    for text in chunk:
        try:
            docs.extend(await batcher.submit([text]))
        except ApiError:
            raise
        except Exception as exc:
            log.warning("/label-studio/predict: the model failed on one task: %s: %s", type(exc).__name__,
                        str(exc)[:300])
            docs.append(None)
    if all(d is None for d in docs):
        raise ApiError(500, "model_error", f"tagging failed: {type(first).__name__}: {first}") from None
    return docs


async def tag(ls: Any, texts: list[str | None], reasons: list[str | None]) -> list[Any]:
    """Tagged documents (None where there is no text), through the micro-batcher in chunks of its batch size;
    a text the model fails on gets None and a reason in ``reasons``."""
    batcher = ls.batcher
    todo = [i for i, t in enumerate(texts) if t is not None]
    out: list[Any] = [None] * len(texts)
    step = max(1, batcher.opts.max_batch_texts)
    for k in range(0, len(todo), step):
        idx = todo[k : k + step]
        for i, doc in zip(idx, await _tag_chunk(batcher, [texts[i] for i in idx]), strict=True):
            out[i] = doc
            if doc is None:
                ls.counters["tasks_not_tagged"] += 1
                reasons[i] = NOT_TAGGED
    return out


def start_training(ls: Any, pid: str | None, xml: Any = None, tasks: list[Any] | None = None) -> dict[str, Any]:
    from parsner.serving.labelstudio_training import RetryLater
    from parsner.serving.server import ApiError

    try:
        return ls.train(pid, xml, tasks)
    except LabelConfigError as exc:
        raise ls.config_error(exc) from None
    except RetryLater as exc:
        raise ApiError(429, "retrain_too_soon", str(exc), {"Retry-After": str(exc.seconds)}) from None
    except LookupError as exc:
        raise ApiError(409, "no_token", str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, "training_off", str(exc)) from None


def on_annotation(ls: Any, pid: str | None, doc: dict[str, Any], xml: Any) -> dict[str, Any]:
    """An annotation event: counted; the N-th (``--retrain-every``) starts a round unless it cannot (said)."""
    from parsner.serving.labelstudio_training import RetryLater

    ls.note_annotations(pid, doc)
    every = ls.opts.retrain_every
    if not (every and ls.retrainer is not None and ls.project(pid).new_annotations >= every):
        return {"status": "ok"}
    try:
        return {"status": "ok", "training": ls.train(pid, xml)}
    except RetryLater as exc:
        return {"status": "ok", "training": {"status": "not started", "reason": str(exc),
                                             "retry_after_s": exc.seconds}}
    except (LookupError, ValueError) as exc:
        return {"status": "ok", "training": {"status": "not started", "reason": str(exc)}}


def add_routes(app: Any, ls: Any) -> None:
    from fastapi import Request

    from parsner.serving.auth import is_authenticated
    from parsner.serving.server import ApiError, read_body

    async def body(request: Request) -> dict[str, Any]:
        return ls.body_json(await read_body(request, MAX_BODY_BYTES))

    @app.get(PREFIX + "/health")
    async def ls_health(request: Request) -> dict[str, Any]:
        # Open to anyone (Label Studio probes it): the summary only for callers with credentials.
        if not is_authenticated(request):
            return ls.public_status()
        return {**ls.public_status(), **ls.status()}

    @app.post(PREFIX + "/setup")
    async def ls_setup(request: Request) -> dict[str, Any]:
        if not is_authenticated(request):  # the middleware refuses it first; a token must never come otherwise
            raise ApiError(401, "unauthorized", "credentials required")
        doc = await body(request)
        pid = project_id(doc.get("project"))
        try:
            cfg = parse_labeling_config(doc.get("schema"))
        except LabelConfigError as exc:
            raise ls.config_error(exc) from None
        ls.setup(pid, cfg, doc.get("hostname"), doc.get("access_token"))  # a new project beyond the cap: 429
        return {"model_version": ls.version}

    @app.post(PREFIX + "/predict")
    async def ls_predict(request: Request) -> dict[str, Any]:
        doc = await body(request)
        tasks = doc.get("tasks")
        if not isinstance(tasks, list):
            raise ApiError(422, "bad_shape", '"tasks" must be a list of Label Studio tasks')
        pid = project_id(doc.get("project"))
        try:
            cfg = ls.config(doc.get("label_config"), pid)
        except LabelConfigError as exc:
            raise ls.config_error(exc) from None
        texts, reasons = task_texts(ls, tasks, cfg.data_key, ls.batcher.opts.max_chars)
        docs = await tag(ls, texts, reasons)
        ls.counters["tasks_predicted"] += len(tasks)
        project = ls.project(pid)
        results = [ls.result(d, cfg, project) for d in docs]
        for res, why in zip(results, reasons, strict=True):
            if why is not None:
                res["skipped"] = why
        return {"results": results, "model_version": ls.version}

    @app.post(PREFIX + "/webhook")
    async def ls_webhook(request: Request) -> dict[str, Any]:
        doc = await body(request)
        action, pid = doc.get("action"), project_id(doc.get("project"))
        project_doc = doc.get("project") if isinstance(doc.get("project"), dict) else {}
        if action == "START_TRAINING":
            return start_training(ls, pid, project_doc.get("label_config"))
        if action in ANNOTATION_EVENTS:
            return on_annotation(ls, pid, doc, project_doc.get("label_config"))
        return {"status": "ignored", "action": str(action)[:64]}

    @app.post(PREFIX + "/train")
    async def ls_train(request: Request) -> dict[str, Any]:
        doc = await body(request)
        tasks = doc.get("annotations")
        if tasks is not None and not isinstance(tasks, list):
            raise ApiError(422, "bad_shape", '"annotations" must be a list of annotated tasks')
        return start_training(ls, project_id(doc.get("project")), doc.get("label_config"), tasks)

    @app.get(PREFIX + "/versions")
    async def ls_versions() -> dict[str, Any]:
        return {"versions": list(ls.versions)}
