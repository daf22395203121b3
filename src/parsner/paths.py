"""Where things live: the repository, the embedded sample, and the read-only ``shared`` folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent  # valid for an editable/source checkout (src layout)

#: The embedded sample corpus shipped with the repository (written by the ParsNER authors).
SAMPLE_DIR = REPO_ROOT / "data" / "sample"

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
