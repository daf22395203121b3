"""``parsner serve --label-studio``: Label Studio's ML-backend API under ``/label-studio/``.

In Label Studio, *Settings > Model > Connect model*, URL ``http://HOST:PORT/label-studio``. Label Studio appends:

* ``GET health`` -> ``{"status": "UP", "model_class", "model_version"}`` (it waits 1 s at most); with credentials
  also a bounded summary: counters, at most :data:`MAX_PROJECTS` projects with :data:`SHOWN_LABELS` labels each;
* ``POST setup`` ``{project, schema, hostname, access_token, extra_params}`` -> ``{"model_version"}`` (3 s at
  most; the config is parsed, the token kept in memory for the export, nothing is loaded). ``hostname`` is
  never fetched from: exports come from ``--label-studio-url`` only (a different one is noted, not used).
  A new project beyond :data:`MAX_PROJECTS` is refused (429);
* ``POST predict`` ``{tasks, project, label_config, params}`` -> ``{"results": [{"result": [regions], "score",
  "model_version"}, ...]}``, one per task, in order (:mod:`parsner.serving.labelstudio_protocol`); the tasks go through
  the server's micro-batcher like ``/v1/ner`` requests. A task parsner cannot tag (no text, too long, a lone
  surrogate) gets an empty result with ``"skipped": REASON``, counted; the others get their predictions;
* ``POST webhook``: ``START_TRAINING`` starts a retraining round (:mod:`parsner.serving.labelstudio_training`), the
  annotation events are counted (``--retrain-every N``) and show the project's offset convention; any other
  event is answered ``ignored``. ``POST train`` (older Label Studio, annotations in the body) retrains too;
* ``GET versions`` -> ``{"versions": [...]}``.

The command-line side (options, their checks, the model a later session serves) is
:mod:`parsner.cli.labelstudio_options`; retraining is :mod:`parsner.serving.labelstudio_training`.

Bodies are read with :mod:`parsner.data.strictjson`: malformed JSON, nesting deeper than 64, duplicate keys or
bytes that are not UTF-8 are a 400; a body of the wrong shape a 422; a labeling config parsner cannot use (not
XML, no ``<Labels>`` on a ``<Text $key>``) a 422 naming the problem. A retraining request sooner than
``--min-retrain-interval`` after the last accepted one is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsner.serving.labelstudio_protocol import (
    KEEP_MODELS,
    MIN_RETRAIN_INTERVAL_S,
    LabelConfigError,
    LabelingConfig,
    TypeMapper,
    parse_labeling_config,
    regions,
    utf16_votes,
)
from parsner.serving.preannotate import task_score

log = logging.getLogger(__name__)

#: Projects kept in memory (config, token, counters): a new one beyond this is refused at /setup.
MAX_PROJECTS = 100
#: Labels listed per project in /label-studio/health (the totals are given), and characters per shown name.
SHOWN_LABELS = 10
SHOWN_CHARS = 64


@dataclass
class LabelStudioOptions:
    train_config: Path | None = None
    retrain_every: int = 0  # also retrain after this many new/updated annotations (0: only on request)
    work_dir: Path | None = None
    label_map: str | None = None  # the serve --label-map spec (the Tagger applies it; evaluation too)
    label_studio_url: str | None = None  # the one Label Studio exports are fetched from (checked base URL)
    keep_models: int = KEEP_MODELS  # retrained models kept in the work folder (the served one always stays)
    min_retrain_interval: float = MIN_RETRAIN_INTERVAL_S  # seconds between accepted retraining requests
    min_score: float = 0.0  # entities scored below this (after calibration) are not proposed (serve --min-score)


def short(text: Any, limit: int = SHOWN_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Project:
    hostname_differs: bool = False  # /setup named another Label Studio than --label-studio-url (never used)
    token: str | None = field(default=None, repr=False)  # memory only; set by /setup alone
    config: LabelingConfig | None = None
    votes: Counter[str] = field(default_factory=Counter)  # annotations counting UTF-16 units vs code points
    new_annotations: int = 0
    # (config, model types, /health entry): made at /setup and after a swap, so /health never computes it over
    # thousands of labels (Label Studio waits 1 s); the config is compared by identity
    summary: tuple[Any, tuple[str, ...], dict[str, Any]] | None = field(default=None, repr=False)

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
                                       lambda: (self.model_dir, self.version), label_studio_url=opts.label_studio_url,
                                       keep_models=opts.keep_models, min_interval=opts.min_retrain_interval,
                                       protect=(self.base_model, self.model_dir))

    def attach(self, app: Any, batcher: Any, info: dict[str, Any]) -> None:
        """Serve the routes on ``app``; predictions go through ``batcher``; ``info`` is /v1/model's answer."""
        from parsner.serving.labelstudio_routes import add_routes

        self.batcher, self.info = batcher, info
        batcher.tagger = VersionedTagger(batcher.tagger, self.version)
        add_routes(app, self)

    def shutdown(self) -> None:
        if self.retrainer is not None:
            self.retrainer.stop()

    def public_status(self) -> dict[str, Any]:
        """What a caller without credentials may see (Label Studio's health check needs no more)."""
        return {"status": "UP", "model_class": "ParsNER", "model_version": self.version}

    def status(self) -> dict[str, Any]:
        """The loop's state for callers with credentials (/label-studio/health, /v1/model): bounded whatever callers
        sent (at most MAX_PROJECTS projects, SHOWN_LABELS labels each) and cheap (each project's entry is
        made at /setup, and again only when its config or the served model's types change)."""
        training: dict[str, Any] = {"enabled": self.retrainer is not None}
        if self.retrainer is not None:
            training.update(self.retrainer.status(), retrain_every=self.opts.retrain_every,
                            work_dir=str(self.opts.work_dir), label_studio_url=self.opts.label_studio_url,
                            keep_models=self.opts.keep_models,
                            min_retrain_interval_s=self.opts.min_retrain_interval)
        return {
            "model_version": self.version,
            "model_dir": str(self.model_dir),
            "projects": {short(pid): self.project_summary(p) for pid, p in self.projects.items()},
            "projects_limit": MAX_PROJECTS,
            "tasks_predicted": self.counters["tasks_predicted"],
            "tasks_without_text": self.counters["tasks_without_text"],
            "tasks_too_long": self.counters["tasks_too_long"],
            "tasks_invalid_text": self.counters["tasks_invalid_text"],
            "tasks_not_tagged": self.counters["tasks_not_tagged"],
            "dropped_entities": dict(sorted(self.dropped.items())),
            "training": training,
        }

    def project_summary(self, p: Project) -> dict[str, Any]:
        types = tuple(self.model_types())
        if p.summary is None or p.summary[0] is not p.config or p.summary[1] != types:
            out: dict[str, Any] = {}
            if p.config is not None:
                cfg, missing = p.config, TypeMapper(p.config.labels).missing_labels(types)
                out = {"from_name": short(cfg.from_name), "to_name": short(cfg.to_name),
                       "data_key": short(cfg.data_key), "labels": [short(x) for x in cfg.labels[:SHOWN_LABELS]],
                       "labels_total": len(cfg.labels),
                       "labels_never_predicted": [short(x) for x in missing[:SHOWN_LABELS]],
                       "labels_never_predicted_total": len(missing)}
            p.summary = (p.config, types, out)
        return {**p.summary[2], "offsets": "utf-16" if p.utf16 else "code points",
                "new_annotations": p.new_annotations, "setup_hostname_ignored": p.hostname_differs,
                "has_token": bool(p.token)}

    def model_types(self) -> list[str]:
        return list(getattr(self.batcher.tagger, "labels", [])) if self.batcher is not None else []

    def project(self, pid: str | None, *, create: bool = False) -> Project:
        """The project's state; a project not seen yet is kept while fewer than MAX_PROJECTS are, else it is a
        throwaway (answered, not remembered), or with ``create`` (/setup) a 429."""
        key = pid or "?"
        if key in self.projects:
            return self.projects[key]
        if len(self.projects) >= MAX_PROJECTS:
            if create:
                from parsner.serving.server import ApiError

                raise ApiError(429, "too_many_projects", f"{MAX_PROJECTS} projects are set up already, the most "
                               "this server keeps; restart it to connect other projects")
            return Project()
        return self.projects.setdefault(key, Project())

    def setup(self, pid: str | None, cfg: LabelingConfig, hostname: Any, token: Any) -> None:
        """/setup (authenticated by the server): the config, the token; ``hostname`` is compared, never used."""
        from parsner.serving.labelstudio_training import same_label_studio

        project = self.project(pid, create=True)
        project.config = cfg
        differs = isinstance(hostname, str) and bool(hostname) and self.opts.label_studio_url is not None \
            and not same_label_studio(self.opts.label_studio_url, hostname)
        if differs and not project.hostname_differs:
            log.info("note: /setup of project %s names Label Studio at %r; exports come from "
                     "--label-studio-url %s only", pid, short(hostname, 200), self.opts.label_studio_url)
        project.hostname_differs = differs
        if isinstance(token, str) and token.strip():
            project.token = token.strip()
        self.project_summary(project)  # paid here, not by /health

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
        if self.opts.min_score > 0:  # this request's own docs: filtered in place
            doc.entities = [e for e in doc.entities if e["score"] >= self.opts.min_score]
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
        """Start (or queue) a retraining round; raises LookupError/ValueError with the reason it cannot, RetryLater
        inside the minimum interval."""
        if self.retrainer is None:
            raise ValueError("retraining is off: start parsner serve with --label-studio --train-config FILE")
        if tasks is None and pid is None:
            raise ValueError("no project id: the export needs the project's id (a positive integer)")
        if tasks is None and not self.opts.label_studio_url:
            raise ValueError("retraining from Label Studio's export needs serve --label-studio-url URL")
        project = self.project(pid)
        cfg = self.config(xml, pid) if xml is not None or project.config is None else project.config
        if tasks is None and not project.token:
            raise LookupError(f"no access token for project {pid} yet: Label Studio sends it with /setup (open "
                              "the project's Model settings so that it checks the backend), then train again")
        job = {"project": pid, "config": cfg, "tasks": tasks, "token": project.token}
        status = self.retrainer.request(job)  # RetryLater leaves the annotation count as it is
        project.new_annotations = 0
        return {"status": status, "model_version": self.version}

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
        for project in list(self.projects.values()):  # new types: the summaries are remade here, not in /health
            self.project_summary(project)

    def body_json(self, raw: bytes) -> dict[str, Any]:
        """The body as a JSON object: 400 for what strictjson refuses (its message: what and where), 422 for
        another JSON value."""
        from parsner.data.strictjson import loads
        from parsner.serving.server import ApiError

        try:
            doc = loads(raw) if raw.strip() else {}
        except ValueError as exc:  # JSONRefused; also an integer too long for Python to read
            raise ApiError(400, "malformed_json", f"the body is not usable JSON: {short(exc, 200)}") from None
        if not isinstance(doc, dict):
            raise ApiError(422, "bad_shape", "send a JSON object")
        return doc

    def config_error(self, exc: LabelConfigError) -> Any:
        from parsner.serving.server import ApiError

        return ApiError(422, "bad_label_config", str(exc))
