"""Records (JSON Lines archives) for the archive tests: ids, nested metadata, Persian keys, awkward JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

from test_tagger import TRAIN_TEXT

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
