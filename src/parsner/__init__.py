"""ParsNER: Persian named-entity recognition with ParsBERT.

Data flows one way: read -> normalise -> tokenise/align -> train -> evaluate -> predict.
Heavy imports (torch, transformers, hazm) are deferred so that ``import parsner`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from parsner.ray_dataset import tag_dataset
    from parsner.tagger import Tagger

__all__ = ["Tagger", "__version__", "tag_dataset"]


def __getattr__(name: str) -> Any:
    if name == "Tagger":
        from parsner.tagger import Tagger

        return Tagger
    if name == "tag_dataset":  # Ray is imported only when this is called
        from parsner.ray_dataset import tag_dataset

        return tag_dataset
    raise AttributeError(f"module 'parsner' has no attribute {name!r}")
