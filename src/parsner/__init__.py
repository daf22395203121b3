"""ParsNER: Persian named-entity recognition with ParsBERT.

The Python API, the same functions the ``parsner`` commands call::

    import parsner

    parsner.build_dataset(corpus="sample", out="runs/data/sample")               # parsner data build
    run = parsner.train("training/sample.yaml", overrides={"data": "runs/data/sample"}, out="models/sample")
    result = parsner.evaluate(run.out_dir, "runs/data/sample", split="test")       # parsner eval
    tagger = parsner.Tagger.from_pretrained(run.out_dir)                           # parsner predict
    entities: list[parsner.Entity] = tagger("به گزارش ایرنا، رئیس‌جمهور به تهران بازگشت.")

Errors that are the caller's to fix are :class:`ParsnerError` subclasses (:class:`InputError`,
:class:`ConfigError`, :class:`ModelLoadError`) whose messages name the parameter that was passed.

Data flows one way: read -> normalise -> align -> train -> evaluate -> predict/serve, and the subpackages are named
for those stages: ``parsner.data``, ``parsner.training``, ``parsner.evaluation``, ``parsner.inference``,
``parsner.serving``, with ``parsner.cli`` on top (see docs/ARCHITECTURE.md). The names above are resolved on first
use, so ``import parsner`` loads neither torch nor transformers nor hazm.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from parsner._version import __version__
from parsner.errors import ConfigError, InputError, ModelLoadError, ParsnerError

if TYPE_CHECKING:  # pragma: no cover
    from parsner.data.api import build_dataset
    from parsner.evaluation.api import evaluate
    from parsner.inference.tagger import Entity, Tagger
    from parsner.serving.ray_dataset import tag_dataset
    from parsner.training.api import train

__all__ = [
    "ConfigError", "Entity", "InputError", "ModelLoadError", "ParsnerError", "Tagger", "__version__",
    "build_dataset", "evaluate", "tag_dataset", "train",
]

#: The public names that live in a stage, and the module each comes from (imported when the name is first used).
_LAZY = {
    "build_dataset": "parsner.data.api",
    "train": "parsner.training.api",
    "evaluate": "parsner.evaluation.api",
    "Tagger": "parsner.inference.tagger",
    "Entity": "parsner.inference.tagger",
    "tag_dataset": "parsner.serving.ray_dataset",  # Ray itself is imported only when it is called
}

# A library leaves the handlers to its application: without one, Python would print warnings on stderr.
logging.getLogger("parsner").addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'parsner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
