"""Ray Data engine: tag records with an actor pool, one model per actor, on this machine or a cluster.

* ``parsner predict --input ARCHIVE --engine ray --workers N``: one read task streams the records on the driver's
  node (the same reader, checks and batches as the local engine; one block per batch, so batch composition and hence
  every score equal the local run's), an actor pool (``map_batches`` with ``compute=ActorPoolStrategy(size=N)``)
  tags each batch, and the driver writes the lines back in input order as they arrive. Records travel as their own
  JSON text, never as Arrow columns (Arrow would unify the schema: ints become floats, missing keys become nulls).
* :func:`parsner.serving.ray_dataset.tag_dataset`: a ``ray.data.Dataset`` in, the same Dataset with an ``entities``
  column out.

Ray is optional (``pip install 'parsner[ray]'``) and imported only here.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from parsner.data import strictjson
from parsner.errors import ConfigError, ParsnerError
from parsner.serving.archive import (
    Record,
    RecordOptions,
    add_entities,
    batches,
    file_sources,
    iter_records,
)

#: A scheduling deadlock (actors waiting for resources that never come) becomes an error after this long.
NO_PROGRESS_TIMEOUT_S = 900.0


def import_ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline machines: no usage-stats prompt or upload
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("the Ray engine needs Ray: pip install 'parsner[ray]'") from None
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-run INFO lines would bury the progress line
    # ... and so would the notice that Ray's own bars are off (parsner draws one line for the whole run)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    return ray


def check_options(args: argparse.Namespace) -> None:
    """The Ray options, checked before any work (Ray itself starts later)."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be >= 1")
    if args.gpus_per_worker is not None and args.gpus_per_worker < 0:
        raise ConfigError("--gpus-per-worker must be >= 0")
    if args.cpus_per_worker is not None and args.cpus_per_worker <= 0:
        raise ConfigError("--cpus-per-worker must be > 0")
    if args.device is not None:
        raise ConfigError("--engine ray places each actor itself: use --gpus-per-worker instead of --device")
    import_ray()
    _check_model(str(args.model))


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray, started privately on this machine (``address`` None) or joined; a Ray already running in-process is used."""
    ray = import_ray()
    if ray.is_initialized():  # a notebook's or a test session's Ray: use it and leave it running
        yield ray
        return
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    breakpoint_hook = os.environ.get("PYTHONBREAKPOINT")  # ray.init points it at Ray's debugger
    opts: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}  # actor prints stay off stdout
    try:
        if address:
            ray.init(address=address, **opts)
        else:
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private loopback cluster needs no token
            # "local" always starts a private cluster; a bare init() would join any `ray start` cluster.
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **opts)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--ray-address {address or 'local'}: cannot start or join Ray ({exc})") from None
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)  # ray.init replaces it with sys.exit; parsner cleans up first
    try:
        yield ray
    finally:
        ray.shutdown()  # stops a private cluster; only disconnects from a joined one
        if breakpoint_hook is None:
            os.environ.pop("PYTHONBREAKPOINT", None)
        else:
            os.environ["PYTHONBREAKPOINT"] = breakpoint_hook


def _placement(ray: Any, workers: int, gpus: float, cpus: float | None, joined: bool) -> float:
    """CPUs per actor; refuse what the cluster cannot place (Ray would wait for it forever)."""
    res = ray.cluster_resources()
    have_cpu, have_gpu = float(res.get("CPU", 0)), float(res.get("GPU", 0))
    if gpus and have_gpu < workers * gpus:
        raise ConfigError(f"{workers} worker(s) x {gpus:g} GPU(s) need {workers * gpus:g} GPUs; the Ray cluster has "
                          f"{have_gpu:g}")
    if cpus is None:
        cpus = have_cpu / workers if have_cpu else 1.0
        if joined or gpus:
            cpus = min(cpus, 1.0)
    if cpus * workers > have_cpu + 1e-9:
        raise ConfigError(f"{workers} worker(s) x {cpus:g} CPU(s) need {cpus * workers:g} CPUs; the Ray cluster has "
                          f"{have_cpu:g} (lower --workers or --cpus-per-worker)")
    return cpus


@contextlib.contextmanager
def _data_context(ray: Any) -> Iterator[None]:
    """Ray Data settings for one run, set before the Dataset exists (each Dataset snapshots the context) and put
    back afterwards (a notebook's or test session's Ray keeps its own)."""
    ctx = ray.data.DataContext.get_current()
    names = ("enable_progress_bars", "execution_no_progress_timeout_s", "target_max_block_size")
    saved = ctx.execution_options.preserve_order, {k: getattr(ctx, k) for k in names}
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False  # parsner draws its own line
    ctx.execution_no_progress_timeout_s = NO_PROGRESS_TIMEOUT_S
    # Every batch its own block: blocks are what the actor pool hands out, and Ray would otherwise coalesce the read
    # task's one-batch tables into 128 MiB blocks, all of which one actor would then tag alone (measured: 60 of 60).
    ctx.target_max_block_size = 1
    try:
        yield
    finally:
        ctx.execution_options.preserve_order = saved[0]
        for k, v in saved[1].items():
            setattr(ctx, k, v)


class RayWorkerError(ParsnerError):
    """A user error (bad model, bad input) raised inside a Ray actor or task, reported in one line."""


def _parsner_error(exc: BaseException) -> ParsnerError | None:
    """A user error raised inside a Ray task or actor: the exception itself when Ray kept it, else its message.

    Ray keeps the exception of a failed task (``RayTaskError.cause``) but only the text of one that killed an actor
    in its constructor (``ActorDiedError``: a model that does not load), so the text is searched too.
    """
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ParsnerError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = re.findall(r"parsner\.(?:errors|runlock)\.\w+: ([^\n]+)", str(getattr(exc, "error_msg", "")) or str(exc))
    return RayWorkerError(f"a Ray worker stopped: {found[-1].strip()}") if found else None


def _check_model(model: str) -> None:
    """A model folder without its config, weights or tokenizer, or with an unknown architecture, fails here, before
    Ray starts (in an actor it would fail once per actor, under Ray's own log lines)."""
    from parsner.inference.backends import resolve_backend
    from parsner.inference.hub import check_model_files, parse_spec
    from parsner.inference.modeling import existing_label_names

    if resolve_backend(model, None) == "torch":
        spec = parse_spec(model)
        check_model_files(spec)
        with contextlib.suppress(ConfigError):  # reads config.json; a head the Tagger maps itself is not an error here
            existing_label_names(spec)


def _tagger_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"quantize": bool(args.quantize), "normalizer": args.normalizer, "label_map": args.label_map,
            "min_score": getattr(args, "min_score", None) or 0.0}


class LoadedTagger:
    """The model of one actor, loaded once when the actor starts."""

    def __init__(self, model: str, device: str, threads: int, tagger_kwargs: dict[str, Any]) -> None:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # ONNX Runtime reads it; torch is told below
        from parsner.inference.tagger import Tagger

        self.tagger = Tagger.from_pretrained(model, device=device, **tagger_kwargs)
        if self.tagger.model is not None:
            import torch

            torch.set_num_threads(threads)


class ArchiveTagger(LoadedTagger):
    """Actor for ``predict --engine ray``: one row is one batch of record lines, tagged as the local engine does."""

    def __init__(self, model: str, device: str, threads: int, tagger_kwargs: dict[str, Any],
                 opts: RecordOptions) -> None:
        super().__init__(model, device, threads, tagger_kwargs)
        self.opts = opts

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out, n_ents = [], []
        for block in batch["lines"]:
            # the read task checked each record (parse_line); strict parsing keeps both readers of a line in step
            recs = [Record("", 0, s, strictjson.loads(s)[self.opts.text_field]) for s in str(block).split("\n")]
            docs = self.tagger.tag_documents([r.text for r in recs], batch_size=self.opts.batch_size)
            out.append("\n".join(add_entities(r.json, d.entities, self.opts.entities_field)
                                 for r, d in zip(recs, docs, strict=True)))
            n_ents.append(sum(len(d.entities) for d in docs))
        return {"idx": batch["idx"], "lines": out, "n_entities": n_ents}


def _archive_source(files: list[Path], opts: RecordOptions, start: int) -> Any:
    """A Ray Datasource with one streaming read task: one block per batch, as the local engine cuts them."""
    import pyarrow as pa
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockMetadata

    def read() -> Iterator[Any]:
        for k, batch in enumerate(batches(iter_records(file_sources(files, opts), opts), opts, start=start)):
            yield pa.table({"idx": [k], "lines": ["\n".join(r.json for r in batch)]})

    class ArchiveSource(Datasource):
        @property
        def supports_distributed_reads(self) -> bool:
            return False  # the read task runs on the driver's node: the files are there

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context: Any = None) -> list[Any]:
            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None,
                                 input_files=tuple(str(f) for f in files))
            return [ReadTask(read, meta)]

    return ArchiveSource()


def tag_archive(args: argparse.Namespace, plan: Any, sink: Any, bar: Any) -> tuple[int, int]:
    """``predict --engine ray``: tag ``plan``'s records on Ray, writing each batch to ``sink`` in input order."""
    from ray.data import ActorPoolStrategy

    workers = args.workers or 1
    gpus = args.gpus_per_worker or 0.0
    n_recs = n_ents = 0
    with ray_session(args.ray_address) as ray, _data_context(ray):
        cpus = _placement(ray, workers, gpus, args.cpus_per_worker, joined=bool(args.ray_address))
        # The read task takes no CPU (actors holding every CPU would otherwise starve it) and runs where the
        # files are; the actors may run anywhere, so the model must be at the same path on every node.
        ds = ray.data.read_datasource(_archive_source(plan.files, plan.opts, plan.start), num_cpus=0,
                                      override_num_blocks=1)
        ctor = {"model": str(args.model), "device": "cuda" if gpus else "cpu", "threads": max(1, int(cpus)),
                "tagger_kwargs": _tagger_kwargs(args), "opts": plan.opts}
        ds = ds.map_batches(ArchiveTagger, fn_constructor_kwargs=ctor, compute=ActorPoolStrategy(size=workers),
                            batch_size=1, batch_format="numpy", num_cpus=cpus, num_gpus=gpus or None)
        expect = 0
        try:
            for block in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for idx, lines, ents in zip(block["idx"], block["lines"], block["n_entities"], strict=True):
                    if int(idx) != expect:  # preserve_order is Ray's promise; a broken one must not go unseen
                        raise RuntimeError(f"Ray returned batch {int(idx)} where batch {expect} was due")
                    expect += 1
                    out = str(lines).split("\n")
                    sink.write(out)
                    n_recs += len(out)
                    n_ents += int(ents)
                    bar.update(len(out))
        except ray.exceptions.RayError as exc:
            user = _parsner_error(exc)
            if user is not None:
                raise user from None
            raise
    return n_recs, n_ents
