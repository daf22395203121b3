"""Where things live: the repository, the embedded sample, and the read-only ``shared`` folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent  # valid for an editable/source checkout (src layout)
#: Where a wheel carries the repository files the CLI needs (setup.py copies them there); absent in a checkout.
PACKAGED_RESOURCES = PACKAGE_DIR / "_resources"


def resource(relative: str) -> Path:
    """A file or folder that ships with ParsNER, by its path in the repository (``training/sample.yaml``): the
    installed wheel's copy, else the source checkout's. The result may not exist (a broken install); callers say so."""
    packaged = PACKAGED_RESOURCES / relative
    return packaged if packaged.exists() else REPO_ROOT / relative


def recipe(name: str) -> Path:
    """A shipped training recipe, ``training/<name>.yaml``."""
    return resource(f"training/{name}.yaml")


def shipped_recipe_for(path: str | Path) -> Path | None:
    """The shipped recipe a ``--config`` that does not exist here names (``training/peyma.yaml``, ``peyma.yaml``
    or ``peyma``), so that the documented commands work from any folder once ParsNER is installed; else None."""
    p = Path(path)
    if p.exists() or len(p.parts) > 2 or (len(p.parts) == 2 and p.parts[0] != "training"):
        return None
    if p.suffix not in ("", ".yaml"):
        return None
    found = recipe(p.stem)
    return found if found.is_file() else None


#: The embedded sample corpus shipped with ParsNER (written by the ParsNER authors).
SAMPLE_DIR = resource("data/sample")

SHARED_ENV = "PARSNER_SHARED"


def shared_dir() -> Path:
    """The folder holding ``data/`` (real corpora) and ``tokenizers/``.

    ``$PARSNER_SHARED`` wins; otherwise ``../shared`` beside the repository checkout.
    The result may not exist: callers decide whether that is an error or a skip.
    """
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (REPO_ROOT.parent / "shared").resolve()


def shared_data_dir() -> Path:
    return shared_dir() / "data"


def parsbert_v1_tokenizer_dir() -> Path:
    return shared_dir() / "tokenizers" / "bert-base-parsbert-uncased"
