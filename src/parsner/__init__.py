"""ParsNER: Persian named-entity recognition with ParsBERT.

Data flows one way: read -> normalise -> align -> train -> evaluate -> predict/serve, and the subpackages are named
for those stages: ``parsner.data``, ``parsner.training``, ``parsner.evaluation``, ``parsner.inference``,
``parsner.serving``, with ``parsner.cli`` on top (see docs/ARCHITECTURE.md).
Heavy imports (torch, transformers, hazm) are deferred so that ``import parsner`` stays fast.

Modules that used to sit at the top (``parsner.tagger``, ``parsner.normalize``, ``parsner.commands.predict``, ...)
still import: :data:`MOVED` maps each old name to its new home, and importing the old name returns the very same
module object (so ``monkeypatch.setattr("parsner.tagger.X", ...)`` patches what the code uses).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from parsner._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from parsner.inference.tagger import Tagger
    from parsner.serving.ray_dataset import tag_dataset

__all__ = ["MOVED", "Tagger", "__version__", "tag_dataset"]

#: Old module path (below ``parsner.``) -> the module's home since the layout by stage.
MOVED: dict[str, str] = {
    "records": "data.records", "readers": "data.readers", "normalize": "data.normalize", "wordtok": "data.wordtok",
    "corpora": "data.corpora", "dataset": "data.dataset", "datastats": "data.datastats",
    "dataset_card": "data.dataset_card", "writers": "data.writers", "pretext": "data.pretext", "align": "data.align",
    "config": "training.config", "train": "training.train", "trainer": "training.trainer",
    "batching": "training.batching", "callbacks": "training.callbacks", "checkpoints": "training.checkpoints",
    "pretrain": "training.pretrain", "distill": "training.distill", "model_card": "training.model_card",
    "metrics": "evaluation.metrics", "evaluate": "evaluation.evaluate", "analysis": "evaluation.analysis",
    "plots": "evaluation.plots", "benchmarks": "evaluation.benchmarks",
    "modeling": "inference.modeling", "backends": "inference.backends", "export": "inference.export",
    "tagger": "inference.tagger", "decoding": "inference.decoding", "runmeta": "inference.runmeta",
    "serve": "serving.server", "serve_page": "serving.page", "render": "serving.render",
    "preannotate": "serving.preannotate",
    "commands": "cli",
}


def _new_name(fullname: str) -> str | None:
    """``parsner.tagger`` -> ``parsner.inference.tagger``, ``parsner.commands.eval`` -> ``parsner.cli.eval``."""
    head, _, rest = fullname.removeprefix("parsner.").partition(".")
    if not fullname.startswith("parsner.") or head not in MOVED:
        return None
    return f"parsner.{MOVED[head]}" + (f".{rest}" if rest else "")


class _Alias:
    """Meta-path finder and loader: an old module path gives the module at its new one (one object, two names)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        new = _new_name(fullname)
        found = importlib.util.find_spec(new) if new is not None else None
        if found is None:  # not an old path, or an old package path with no such submodule
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=found.submodule_search_locations is not None)

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(_new_name(spec.name))  # type: ignore[arg-type]
        spec.loader_state = module.__spec__  # the import system sets __spec__ to the alias's; put it back after
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = module.__spec__.loader_state or module.__spec__


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    # First, so that a submodule of an old package path (parsner.commands.eval) is never loaded a second time.
    sys.meta_path.insert(0, _Alias())


def __getattr__(name: str) -> Any:
    if name == "Tagger":
        from parsner.inference.tagger import Tagger

        return Tagger
    if name == "tag_dataset":  # Ray is imported only when this is called
        from parsner.serving.ray_dataset import tag_dataset

        return tag_dataset
    raise AttributeError(f"module 'parsner' has no attribute {name!r}")
