"""A progress line on stderr for long work (tagging an archive, its check pass): count, rate and ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """A progress line on stderr: count, rate and (when the total is known) an ETA.

    On a terminal the line is redrawn in place a few times a second; in a log file a new line is written every
    ``log_every`` seconds, so a long run under nohup still says where it is. Nothing is drawn in the first
    ``delay`` seconds (short runs stay quiet).
    """

    def __init__(self, what: str, total: int | None, unit: str = "records", *, stream: TextIO | None = None,
                 enabled: bool = True, delay: float = 1.0, log_every: float = 30.0, scale: float = 1.0,
                 initial: int = 0) -> None:
        self.what, self.total, self.unit, self.scale = what, total, unit, scale
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.2 if self.tty else log_every
        self.n = initial
        self.t0 = time.monotonic()
        self.next = self.t0 + max(delay, 0.0)
        self.first: tuple[float, int] | None = None  # the rate counts from the first update (after any startup)
        self.drawn = False

    def update(self, n: int = 1) -> None:
        self.set(self.n + n)

    def set(self, n: int) -> None:
        if self.first is None:
            self.first = (time.monotonic(), self.n)
        self.n = n
        if self.enabled and time.monotonic() >= self.next:
            self._draw()

    def line(self) -> str:
        t1, n1 = self.first or (self.t0, self.n)
        elapsed = time.monotonic() - t1
        rate = (self.n - n1) / elapsed if elapsed > 0.5 and self.n > n1 else 0.0
        shown = self.n / self.scale
        text = f"{self.what}: {shown:,.0f}"
        if self.total:
            text += f"/{self.total / self.scale:,.0f} {self.unit} ({100 * self.n / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        if rate > 0:
            text += f", {rate / self.scale:,.0f} {self.unit}/s"
        if self.total and rate > 0:
            text += f", ETA {_duration(max(self.total - self.n, 0) / rate)}"
        return text

    def _draw(self) -> None:
        self.next = time.monotonic() + self.every
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write(("\r\x1b[K" if self.tty else "") + self.line() + "\n")
            self.stream.flush()
