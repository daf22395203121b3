"""``parsner serve --label-studio``: Label Studio's ML-backend API under ``/label-studio/``.

In Label Studio, *Settings > Model > Connect model*, URL ``http://HOST:PORT/label-studio``. Label Studio appends:

* ``GET health`` -> ``{"status": "UP", "model_version", ...counters}`` (it waits 1 s at most);
* ``POST setup`` ``{project, schema, hostname, access_token, extra_params}`` -> ``{"model_version"}`` (3 s at
  most; the config is parsed, the token kept in memory for the export, nothing is loaded);
* ``POST predict`` ``{tasks, project, label_config, params}`` -> ``{"results": [{"result": [regions], "score",
  "model_version"}, ...]}``, one per task, in order (:mod:`parsner.serving.labelstudio_protocol`); the tasks go through
  the server's micro-batcher like ``/v1/ner`` requests;
* ``POST webhook``: ``START_TRAINING`` starts a retraining round (:mod:`parsner.serving.labelstudio_training`), the
  annotation events are counted (``--retrain-every N``) and show the project's offset convention; any other
  event is answered ``ignored``. ``POST train`` (older Label Studio, annotations in the body) retrains too;
* ``GET versions`` -> ``{"versions": [...]}``.

The command-line side (options, their checks, the model a later session serves) is
:mod:`parsner.cli.labelstudio_options`; retraining is :mod:`parsner.serving.labelstudio_training`.

A labeling config parsner cannot use (not XML, no ``<Labels>`` on a ``<Text $key>``) is a 422 naming the
problem; a malformed body 400; a task without the config's text field gets an empty result.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner.serving.labelstudio_protocol import (
    LabelConfigError,
    LabelingConfig,
    TypeMapper,
    parse_labeling_config,
    regions,
    task_score,
    utf16_votes,
)


@dataclass
class LabelStudioOptions:
    train_config: Path | None = None
    retrain_every: int = 0  # also retrain after this many new/updated annotations (0: only on request)
    work_dir: Path | None = None
    label_map: str | None = None  # the serve --label-map spec (the Tagger applies it; evaluation too)


@dataclass
class Project:
    hostname: str | None = None
    token: str | None = field(default=None, repr=False)  # memory only
    config: LabelingConfig | None = None
    votes: Counter[str] = field(default_factory=Counter)  # annotations counting UTF-16 units vs code points
    new_annotations: int = 0

    @property
    def utf16(self) -> bool:
        return self.votes["utf16"] > self.votes["codepoints"]


class VersionedTagger:
    """The served Tagger, stamping each document with the version of the model that tagged it."""

    def __init__(self, tagger: Any, version: str) -> None:
        self.tagger, self.version = tagger, version

    def tag_documents(self, texts: Any, batch_size: int = 32) -> list[Any]:
        docs = self.tagger.tag_documents(texts, batch_size=batch_size)
        for d in docs:
            d.model_version = self.version
        return docs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tagger, name)


# -------------------------------------------------------------------------------------------- backend


class LabelStudioBackend:
    """State of the loop: the served model's version, projects (config, token), counters, retraining."""

    def __init__(self, model_dir: str | Path, opts: LabelStudioOptions, *, version: str | None = None,
                 base_model: str | Path | None = None) -> None:
        from parsner.serving.labelstudio_training import Retrainer, initial_version, past_versions

        self.opts, self.model_dir = opts, Path(model_dir)
        self.base_model = Path(base_model or model_dir)
        self.version = version or initial_version(self.model_dir)
        self.versions = list(dict.fromkeys([*past_versions(opts.work_dir), self.version]))
        self.projects: dict[str, Project] = {}
        self.counters: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.batcher: Any = None
        self.info: dict[str, Any] = {}
        self.retrainer = None
        if opts.train_config is not None and opts.work_dir is not None:
            self.retrainer = Retrainer(opts.work_dir, opts.train_config, opts.label_map, self.swap,
                                       lambda: (self.model_dir, self.version))

    def attach(self, app: Any, batcher: Any, info: dict[str, Any]) -> None:
        """Serve the routes on ``app``; predictions go through ``batcher``; ``info`` is /v1/model's answer."""
        from parsner.serving.labelstudio_routes import add_routes

        self.batcher, self.info = batcher, info
        batcher.tagger = VersionedTagger(batcher.tagger, self.version)
        add_routes(app, self)

    def shutdown(self) -> None:
        if self.retrainer is not None:
            self.retrainer.stop()

    def status(self) -> dict[str, Any]:
        """The loop's state, for /label-studio/health, /health and /v1/model (cheap: no model call)."""
        training: dict[str, Any] = {"enabled": self.retrainer is not None}
        if self.retrainer is not None:
            training.update(self.retrainer.status(), retrain_every=self.opts.retrain_every,
                            work_dir=str(self.opts.work_dir))
        return {
            "model_version": self.version,
            "model_dir": str(self.model_dir),
            "projects": {pid: {**(p.config.to_dict() if p.config else {}),
                               "offsets": "utf-16" if p.utf16 else "code points",
                               "new_annotations": p.new_annotations,
                               "labels_never_predicted": TypeMapper(p.config.labels).missing_labels(
                                   self.model_types()) if p.config else []}
                         for pid, p in self.projects.items()},
            "tasks_predicted": self.counters["tasks_predicted"],
            "tasks_without_text": self.counters["tasks_without_text"],
            "tasks_too_long": self.counters["tasks_too_long"],
            "dropped_entities": dict(sorted(self.dropped.items())),
            "training": training,
        }

    def model_types(self) -> list[str]:
        return list(getattr(self.batcher.tagger, "labels", [])) if self.batcher is not None else []

    def project(self, pid: str | None) -> Project:
        return self.projects.setdefault(pid or "?", Project())

    def config(self, xml: Any, pid: str | None) -> LabelingConfig:
        """The config sent with a request, else the project's from setup; LabelConfigError when none is usable."""
        if xml is None and pid in self.projects and self.projects[pid].config is not None:
            return self.projects[pid].config  # type: ignore[return-value]
        cfg = parse_labeling_config(xml)
        self.project(pid).config = cfg
        return cfg

    def result(self, doc: Any, cfg: LabelingConfig, project: Project) -> dict[str, Any]:
        if doc is None:
            return {"result": [], "score": 0.0, "model_version": self.version}
        found = regions(doc, cfg, TypeMapper(cfg.labels), utf16=project.utf16, dropped=self.dropped)
        return {"result": found, "score": task_score(doc), "model_version": getattr(doc, "model_version",
                                                                                    self.version)}

    def note_annotations(self, pid: str | None, body: dict[str, Any]) -> None:
        """Count an annotation event and learn the project's offset convention from it."""
        project = self.project(pid)
        anns = body.get("annotations") if isinstance(body.get("annotations"), list) else [body.get("annotation")]
        project.new_annotations += sum(1 for a in anns if isinstance(a, dict)) or 1
        task = body.get("task")
        if project.config is not None and isinstance(task, dict):
            project.votes.update(utf16_votes([{**task, "annotations": anns}], project.config))

    def train(self, pid: str | None, xml: Any = None, tasks: list[Any] | None = None) -> dict[str, Any]:
        """Start (or queue) a retraining round; raises LookupError/ValueError with the reason it cannot."""
        if self.retrainer is None:
            raise ValueError("retraining is off: start parsner serve with --label-studio --train-config FILE")
        project = self.project(pid)
        cfg = self.config(xml, pid) if xml is not None or project.config is None else project.config
        if tasks is None and (not project.token or not project.hostname):
            raise LookupError(f"no access token for project {pid} yet: Label Studio sends it with /setup (open "
                              "the project's Model settings so that it checks the backend), then train again")
        job = {"project": pid, "config": cfg, "tasks": tasks, "hostname": project.hostname, "token": project.token}
        project.new_annotations = 0
        return {"status": self.retrainer.request(job), "model_version": self.version}

    def swap(self, model_dir: Path, version: str, n: int) -> None:
        """Serve ``model_dir`` from the next batch on (called by the retraining thread after a round it won)."""
        from parsner.inference.tagger import Tagger
        from parsner.serving.server import model_info

        tagger = Tagger.from_pretrained(model_dir, device="cpu", label_map=self.opts.label_map)
        if self.retrainer is not None:
            self.retrainer.write_current(model_dir, version, n, self.base_model)
        wrapped = VersionedTagger(tagger, version)
        self.batcher.executor.submit(setattr, self.batcher, "tagger", wrapped).result()
        self.model_dir, self.version = model_dir, version
        self.versions.append(version)
        self.info.update(model_info(tagger, str(model_dir), self.batcher.opts))

    def body_json(self, raw: bytes) -> dict[str, Any]:
        from parsner.serving.server import ApiError

        try:
            doc = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "malformed_json", "the body is not UTF-8 JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "bad_shape", "send a JSON object")
        return doc

    def config_error(self, exc: LabelConfigError) -> Any:
        from parsner.serving.server import ApiError

        return ApiError(422, "bad_label_config", str(exc))
