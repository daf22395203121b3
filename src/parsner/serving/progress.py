"""A progress bar on stderr for long work (tagging an archive, its check pass): count, rate and ETA, drawn by tqdm.

It is drawn on a terminal only: in a log file or a pipe a redrawn line is noise, and the command's summary line
says how it went. ``parsner -q`` hides it too (the ``parsner`` logger then shows warnings only).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from tqdm import tqdm


def _on_a_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """A progress bar: count, rate and (when the total is known) an ETA; ``set``/``update`` move it.

    ``scale`` divides what is shown (bytes counted, MB shown); ``initial`` is work already done (a resumed run),
    not counted in the rate; nothing is drawn in the first ``delay`` seconds, so short runs stay quiet.
    """

    def __init__(self, what: str, total: int | None, unit: str = "records", *, stream: TextIO | None = None,
                 enabled: bool = True, delay: float = 1.0, scale: float = 1.0, initial: int = 0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        shown = enabled and _on_a_terminal(self.stream) and logging.getLogger("parsner").isEnabledFor(logging.INFO)
        self.bar = tqdm(total=total or None, initial=initial, desc=what, unit=f" {unit}", file=self.stream,
                        disable=not shown, delay=max(delay, 0.0), mininterval=0.2, dynamic_ncols=True,
                        unit_scale=1.0 / scale if scale != 1.0 else False, leave=True)
        self.enabled = shown  # kept apart: tqdm marks a closed bar disabled
        self._n = initial

    @property
    def n(self) -> int:
        """The work done so far, unscaled (records, bytes)."""
        return self._n

    def update(self, n: int = 1) -> None:
        self.set(self._n + n)

    def set(self, n: int) -> None:
        step, self._n = n - self._n, n
        if step and self.enabled:
            self.bar.update(step)

    def close(self) -> None:
        self.bar.close()
