"""``parsner.tag_dataset``: a ``ray.data.Dataset`` in, the same Dataset with an ``entities`` column out.

The model is loaded once per actor (an actor pool, ``map_batches`` with ``compute=ActorPoolStrategy``), from a trained
run or a ``parsner export --onnx`` folder alike (:meth:`parsner.tagger.Tagger.from_pretrained` picks the backend).
Each batch goes through Arrow untouched except for the appended column, so the Dataset's other columns come out as
they went in.
"""

from __future__ import annotations

import os
from typing import Any

from parsner.errors import ConfigError
from parsner.serving.archive import entity_arrow_type
from parsner.serving.ray_engine import LoadedTagger, import_ray


class DatasetTagger(LoadedTagger):
    """Actor for :func:`tag_dataset`: appends the entities column to an Arrow batch, leaving the others as they are."""

    def __init__(self, model: str, device: str, threads: int, tagger_kwargs: dict[str, Any], text_field: str,
                 entities_field: str, batch_size: int) -> None:
        super().__init__(model, device, threads, tagger_kwargs)
        self.text_field, self.entities_field, self.batch_size = text_field, entities_field, batch_size

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        from parsner.serving.render import entity_record

        if self.entities_field in table.column_names:
            raise ValueError(f"the dataset already has a column {self.entities_field!r}; pass another entities_field")
        if self.text_field not in table.column_names:
            raise ValueError(f"the dataset has no column {self.text_field!r} (columns: {table.column_names})")
        texts = table.column(self.text_field).to_pylist()
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"column {self.text_field!r} holds {type(text).__name__}, not text: {text!r}")
        docs = self.tagger.tag_documents(texts, batch_size=self.batch_size)
        ents = [[entity_record(e) for e in d.entities] for d in docs]
        return table.append_column(self.entities_field, pa.array(ents, type=entity_arrow_type()))


def tag_dataset(ds: Any, model: str | os.PathLike[str], *, text_field: str = "text", entities_field: str = "entities",
                workers: int = 1, num_gpus: float = 0, num_cpus: float | None = None, batch_size: int = 32,
                preserve_order: bool = True, **tagger_kwargs: Any) -> Any:
    """``ds`` with an ``entities_field`` column: the entities of each row's ``text_field`` (lazy, like any map).

    ``workers`` actors each load ``model`` once (a trained run or an ``parsner export --onnx`` folder; it must be at
    the same path on every node). ``num_gpus``: GPUs per actor (refused when the cluster has fewer). ``num_cpus``:
    CPUs per actor, default ``min(1, cluster CPUs / workers)`` so that a lazy read still gets a CPU. Other columns
    pass through Arrow untouched. Extra keyword arguments go to ``Tagger.from_pretrained`` (``normalizer``,
    ``label_map``, ``quantize``).
    """
    ray = import_ray()
    from ray.data import ActorPoolStrategy

    if workers < 1 or batch_size < 1:
        raise ConfigError("workers and batch_size must be >= 1")
    if ray.is_initialized():
        have = ray.cluster_resources()
        if num_gpus and float(have.get("GPU", 0)) < workers * num_gpus:
            raise ConfigError(f"{workers} worker(s) x {num_gpus:g} GPU(s) need {workers * num_gpus:g} GPUs; the Ray "
                              f"cluster has {float(have.get('GPU', 0)):g}")
        if num_cpus is None:
            num_cpus = min(1.0, float(have.get("CPU", 1)) / workers)
    num_cpus = 1.0 if num_cpus is None else num_cpus
    ctor = {"model": str(model), "device": "cuda" if num_gpus else "cpu", "threads": max(1, int(num_cpus)),
            "tagger_kwargs": tagger_kwargs, "text_field": text_field, "entities_field": entities_field,
            "batch_size": batch_size}
    out = ds.map_batches(DatasetTagger, fn_constructor_kwargs=ctor, compute=ActorPoolStrategy(size=workers),
                         batch_size=batch_size, batch_format="pyarrow", num_cpus=num_cpus,
                         num_gpus=num_gpus or None)
    if preserve_order:
        out.context.execution_options.preserve_order = True
    return out
