"""The Label Studio retraining worker process: ``python -m parsner.cli.labelstudio_worker ROUND``.

``parsner serve --label-studio`` starts it for each round with stderr pointed at ``ROUND/log.txt``. It is a process
entry like the commands, so its logging set-up lives here with theirs: the ``parsner`` logger's records (the round's
own lines and what the build, training and evaluation log) go to stderr as bare lines; the round itself is
:func:`parsner.workflows.labelstudio_retrain.run_round_dir`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    from parsner.workflows.labelstudio_retrain import run_round_dir

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m parsner.cli.labelstudio_worker ROUND_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the log is a file: no transformers bars in it
    logger = logging.getLogger("parsner")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        return run_round_dir(Path(args[0]))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


if __name__ == "__main__":
    sys.exit(main())
