"""What several test modules share and that is not a fixture: builders of small datasets and runs (``train``), a
server in a thread and an HTTP client that carries its credentials (``serve``), hand-built Hub caches shaped like
the published ParsBERT repositories (``hub``), archives (``archive``), a real Label Studio (``labelstudio``).
Fixtures built from them live in ``tests/conftest.py``. ``tests`` is on pytest's ``pythonpath``, so a test module
imports ``from helpers.train import ...``."""
