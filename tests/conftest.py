"""Shared fixtures. Tests run offline: every hub miss would otherwise wait ~20 s."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from parsner.paths import SAMPLE_DIR, parsbert_v1_tokenizer_dir, shared_dir

# Hypothesis's timing checks (an input drawn too slowly, an example over 200 ms) fail a correct test on a loaded
# 2-core machine; what a property test asserts does not depend on time, so they are off for the whole suite.
settings.register_profile("parsner", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("parsner")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` with the real corpora, or skip (set $PARSNER_SHARED to point elsewhere)."""
    d = shared_dir() / "data"
    if not d.is_dir():
        pytest.skip(f"real corpora not found at {d} (set PARSNER_SHARED to the shared folder)")
    return d


@pytest.fixture(scope="session")
def parsbert_tokenizer_dir() -> Path:
    """ParsBERT v1's real tokenizer/config folder (no weights), or skip."""
    d = parsbert_v1_tokenizer_dir()
    if not (d / "vocab.txt").is_file():
        pytest.skip(f"ParsBERT v1 tokenizer not found at {d} (set PARSNER_SHARED to the shared folder)")
    return d


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run-like model folder (random tiny BERT; :func:`helpers.tagger.build_model_dir`), built once per session.
    Read it, never write into it."""
    from helpers.tagger import build_model_dir

    return build_model_dir(tmp_path_factory.mktemp("tagger") / "run")


@pytest.fixture(scope="session")
def tagger(model_dir: Path):
    """A CPU :class:`~parsner.inference.tagger.Tagger` over :func:`model_dir`."""
    from parsner.inference.tagger import Tagger

    return Tagger.from_pretrained(model_dir, device="cpu")


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The model the ``predict`` tests tag with (:func:`helpers.tagger.build_model_dir`, seed 1), as the path string
    a command line takes; built once per session. Read it, never write into it (a module may define its own)."""
    from helpers.tagger import build_model_dir

    return str(build_model_dir(tmp_path_factory.mktemp("predict") / "run", seed=1))

