"""Records (JSON Lines archives) for the archive tests: ids, nested metadata, Persian keys, awkward JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

from helpers.tagger import TRAIN_TEXT

WORDS = TRAIN_TEXT.replace(".", " .").split()

#: Lines that only a byte-faithful pass-through keeps as they are (number formats, escapes, spacing, key order).
AWKWARD_LINES = [
    '{"id": 1, "text": "علی رضایی در دانشگاه تهران گفت.", "meta": {"منبع": "ایرنا", "score": 1.0, "n": [1, 2.5e3]}}',
    '{"text":"سازمان ملل متحد در نیویورک","id":"b","x":null,"nested":{"a":{"b":[true,false]}}}',
    '{"id": 3, "text": ""}',
    '{"id": 4,   "text": "حمید به \\u062a\\u0647\\u0631\\u0627\\u0646 رفت" , "f": 1.50, "big": 1234567890123456789 } ',
    '{"شناسه": "۵", "text": "خط\u2028جدا و \u2029 پاراگراف در مشهد", "تاریخ": "۱۴۰۲/۰۷/۱۲"}',
]


def make_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40)))
        rec: dict = {"id": f"doc-{i}", "text": text}
        if i % 3 == 0:
            rec["meta"] = {"منبع": "خبرگزاری", "score": i, "tags": ["a", None]}
        elif i % 3 == 1:
            rec = {"text": text, "id": i, "meta": {"score": i + 0.5}}  # another key order, an int id
        recs.append(rec)
    return recs


def write_jsonl(path: Path, records: list[dict] | list[str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def strip_entities(line: str, field: str = "entities") -> tuple[str, list[dict]]:
    """An output line split into the input line's text and the entities parsner added."""
    obj = json.loads(line)
    ents = obj[field]
    marker = f', "{field}": ' if not line.startswith(f'{{"{field}"') else f'"{field}": '
    k = line.rindex(marker)
    assert line.endswith("}") and json.loads(line[k + len(marker):-1]) == ents
    return line[:k], ents


def parsner_env() -> dict[str, str]:
    """The environment of a ``python -m parsner`` child: offline, one thread, this checkout on the path."""
    import os
    import sys

    return dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                TOKENIZERS_PARALLELISM="false", PYTHONPATH=os.pathsep.join(sys.path))


#: Runs ``argv[2:]`` and prints ``{"rc", "maxrss_kb"}`` of that child alone. A launcher is needed because Linux
#: carries a process's peak RSS across fork and exec: a child forked from pytest (hundreds of MB with torch loaded)
#: would report pytest's peak as its own; a child forked from this small launcher starts from the launcher's.
_LAUNCHER = """
import json, resource, subprocess, sys
try:
    rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, timeout=float(sys.argv[1])).returncode
except subprocess.TimeoutExpired:
    rc = -9
print(json.dumps({"rc": rc, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def run_measured(argv: list[str], tmp: Path, timeout: float = 300) -> tuple[int, str, int]:
    """``(exit code, stderr, peak RSS in bytes)`` of ``python -m parsner ARGV``, that process alone.

    A child killed by a signal (or by the timeout: a hang) gives a negative exit code, as ``subprocess`` does.
    """
    import subprocess
    import sys

    err_path = tmp / "stderr.txt"
    with open(err_path, "wb") as err:
        res = subprocess.run([sys.executable, "-c", _LAUNCHER, str(timeout), sys.executable, "-m", "parsner", *argv],
                             env=parsner_env(), stdout=subprocess.PIPE, stderr=err, timeout=timeout + 60, check=True)
    got = json.loads(res.stdout)
    return got["rc"], err_path.read_text(encoding="utf-8", errors="replace"), got["maxrss_kb"] * 1024


def write_huge_gzip(path: Path, text_bytes: int, before: str = "", after: str = "") -> Path:
    """A ``.jsonl.gz`` whose record ``{"id": "huge", "text": "..."}`` holds ``text_bytes`` bytes of Persian text,
    compressed as it streams (repeated bytes: a few hundred MB cost about a second and a few hundred KB)."""
    import gzip

    piece = ("سلام " * 20_000).encode("utf-8")  # 180,000 bytes
    with gzip.open(path, "wb", compresslevel=1) as fh:
        if before:
            fh.write(before.encode("utf-8") + b"\n")
        fh.write(b'{"id": "huge", "text": "')
        for _ in range(text_bytes // len(piece)):
            fh.write(piece)
        fh.write(b'"}\n')
        if after:
            fh.write(after.encode("utf-8") + b"\n")
    return path
