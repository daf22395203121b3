"""The ``/label-studio/*`` routes of ``parsner serve`` (see :mod:`parsner.serving.labelstudio_backend` for the protocol;
``ls`` is its ``LabelStudioBackend``, which adds these routes).

Errors are the server's JSON ``{"error": {"status", "code", "message"}}``; no message ever repeats a request
body (setup's holds the project's access token). No ``from __future__ import annotations`` here: FastAPI reads the
handlers' ``Request`` annotation at definition time.
"""

from typing import Any

from parsner.serving.labelstudio_protocol import LabelConfigError, parse_labeling_config, project_id

PREFIX = "/label-studio"
#: Label Studio sends every selected task in one predict call: a larger body limit than /v1/ner's.
MAX_BODY_BYTES = 200_000_000
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")


def task_texts(ls: Any, tasks: list[Any], key: str, max_chars: int) -> list[str | None]:
    """Each task's text (``data[key]``), or None for a task without it or one too long to tag (counted)."""
    out: list[str | None] = []
    for task in tasks:
        data = task.get("data") if isinstance(task, dict) else None
        text = data.get(key) if isinstance(data, dict) else None
        if not isinstance(text, str):
            ls.counters["tasks_without_text"] += 1
            text = None
        elif len(text) > max_chars:
            ls.counters["tasks_too_long"] += 1
            text = None
        out.append(text)
    return out


async def tag(ls: Any, texts: list[str | None]) -> list[Any]:
    """Tagged documents (None where there is no text), through the micro-batcher in chunks of its batch size."""
    from parsner.serving.server import ApiError

    batcher = ls.batcher
    todo = [t for t in texts if t is not None]
    docs: list[Any] = []
    step = max(1, batcher.opts.max_batch_texts)
    for k in range(0, len(todo), step):
        try:
            docs.extend(await batcher.submit(todo[k : k + step]))
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(500, "model_error", f"tagging failed: {type(exc).__name__}: {exc}") from None
    found = iter(docs)
    return [next(found) if t is not None else None for t in texts]


def start_training(ls: Any, pid: str | None, xml: Any = None,
                   tasks: list[Any] | None = None) -> dict[str, Any]:
    from parsner.serving.server import ApiError

    try:
        return ls.train(pid, xml, tasks)
    except LabelConfigError as exc:
        raise ls.config_error(exc) from None
    except LookupError as exc:
        raise ApiError(409, "no_token", str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, "training_off", str(exc)) from None


def add_routes(app: Any, ls: Any) -> None:
    from fastapi import Request

    from parsner.serving.server import ApiError, read_body

    async def body(request: Request) -> dict[str, Any]:
        return ls.body_json(await read_body(request, MAX_BODY_BYTES))

    @app.get(PREFIX + "/health")
    async def ls_health() -> dict[str, Any]:
        return {"status": "UP", "model_class": "ParsNER", **ls.status()}

    @app.post(PREFIX + "/setup")
    async def ls_setup(request: Request) -> dict[str, Any]:
        doc = await body(request)
        pid = project_id(doc.get("project"))
        try:
            cfg = parse_labeling_config(doc.get("schema"))
        except LabelConfigError as exc:
            raise ls.config_error(exc) from None
        project = ls.project(pid)
        project.config = cfg
        hostname, token = doc.get("hostname"), doc.get("access_token")
        if isinstance(hostname, str) and hostname.startswith(("http://", "https://")):
            project.hostname = hostname
        if isinstance(token, str) and token.strip():
            project.token = token.strip()
        return {"model_version": ls.version}

    @app.post(PREFIX + "/predict")
    async def ls_predict(request: Request) -> dict[str, Any]:
        doc = await body(request)
        tasks = doc.get("tasks")
        if not isinstance(tasks, list):
            raise ApiError(400, "bad_shape", '"tasks" must be a list of Label Studio tasks')
        pid = project_id(doc.get("project"))
        try:
            cfg = ls.config(doc.get("label_config"), pid)
        except LabelConfigError as exc:
            raise ls.config_error(exc) from None
        docs = await tag(ls, task_texts(ls, tasks, cfg.data_key, ls.batcher.opts.max_chars))
        ls.counters["tasks_predicted"] += len(tasks)
        project = ls.project(pid)
        return {"results": [ls.result(d, cfg, project) for d in docs], "model_version": ls.version}

    @app.post(PREFIX + "/webhook")
    async def ls_webhook(request: Request) -> dict[str, Any]:
        doc = await body(request)
        action, pid = doc.get("action"), project_id(doc.get("project"))
        project_doc = doc.get("project") if isinstance(doc.get("project"), dict) else {}
        if action == "START_TRAINING":
            return start_training(ls, pid, project_doc.get("label_config"))
        if action in ANNOTATION_EVENTS:
            ls.note_annotations(pid, doc)
            every = ls.opts.retrain_every
            if every and ls.retrainer is not None and ls.project(pid).new_annotations >= every:
                try:
                    return {"status": "ok", "training": ls.train(pid, project_doc.get("label_config"))}
                except (LookupError, ValueError) as exc:
                    return {"status": "ok", "training": {"status": "not started", "reason": str(exc)}}
            return {"status": "ok"}
        return {"status": "ignored", "action": str(action)}

    @app.post(PREFIX + "/train")
    async def ls_train(request: Request) -> dict[str, Any]:
        doc = await body(request)
        tasks = doc.get("annotations")
        if tasks is not None and not isinstance(tasks, list):
            raise ApiError(400, "bad_shape", '"annotations" must be a list of annotated tasks')
        return start_training(ls, project_id(doc.get("project")), doc.get("label_config"), tasks)

    @app.get(PREFIX + "/versions")
    async def ls_versions() -> dict[str, Any]:
        return {"versions": list(ls.versions)}
