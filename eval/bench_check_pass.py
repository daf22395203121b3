"""How fast the archive's check pass reads records (every record parsed strictly, every file hashed), before any model.

    python eval/bench_check_pass.py [--records 200000] [--repeat 2] [--src OTHER_CHECKOUT/src]

Writes news-like JSON Lines records (Persian text of 60 words, nested metadata with Persian keys) to a temporary file
and times :func:`parsner.serving.archive.survey` over it. ``--src`` times another checkout's code in a child process
right after, so that two versions are compared side by side on one machine, one thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = "علی رضایی دیروز در دانشگاه تهران با نمایندگان سازمان ملل دیدار کرد و گفت که".split()


def write_records(path: Path, n: int) -> float:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            rec = {"id": f"irna-{i}", "text": " ".join(rng.choice(WORDS) for _ in range(60)),
                   "meta": {"منبع": "ایرنا", "date": "1403-07-12"}}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path.stat().st_size / 2**20


def time_survey(path: Path, repeat: int) -> list[float]:
    from parsner.serving.archive import RecordOptions, survey

    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        survey([path], RecordOptions())
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--src", type=Path, help="another checkout's src/ folder, timed the same way after this one")
    ap.add_argument("--only", type=Path, help=argparse.SUPPRESS)  # the child's side: time this file, print JSON
    args = ap.parse_args()
    if args.only is not None:
        print(json.dumps(time_survey(args.only, args.repeat)))
        return 0
    from parsner.envinfo import bench_record, bench_summary

    print(bench_summary(bench_record(threads=1)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        size = write_records(path, args.records)
        runs = {"this checkout": None, str(args.src): args.src} if args.src else {"this checkout": None}
        for name, src in runs.items():
            env = {**os.environ, "OMP_NUM_THREADS": "1"} | ({"PYTHONPATH": str(src)} if src else {})
            res = subprocess.run([sys.executable, __file__, "--only", str(path), "--repeat", str(args.repeat)],
                                 env=env, capture_output=True, text=True, check=True)
            times = json.loads(res.stdout)
            print(f"{name}: {args.records:,} records, {size:.1f} MiB: "
                  + ", ".join(f"{t:.2f} s ({size / t:.0f} MiB/s)" for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
