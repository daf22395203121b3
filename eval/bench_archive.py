"""Tagging an archive: records/s of the local engine and of Ray (1 and 2 workers), peak memory, resume after SIGTERM.

    python eval/bench_archive.py              # 5,000 records for speed, RSS at 10k and 200k, resume at 10k
    python eval/bench_archive.py --records 20000 --json eval/bench_archive.json

Every figure comes from ``parsner predict --input FILE.jsonl --output OUT`` run as a subprocess on the same input
and the same cores, one run at a time:

* speed: wall time of the whole command; time to the first output record (imports, the check pass, model load, for
  Ray also starting the cluster and the actors); and the steady rate after that (records after the first batch /
  time from the first batch to the end). Ray's overhead is the difference to the local engine in both.
* memory: peak RSS of the command at ``--rss`` record counts (one thread for the local engine), from ``wait4``
  (the kernel's high-water mark of the process and its waited children) and from polling the process tree in /proc
  every 0.1 s (the sum of RSS over the tree: for Ray it adds up gcs, raylet and the workers, and counts shared
  object-store pages more than once);
* resume: the local run on ``--rss``'s first count is stopped by SIGTERM half way, then finished with ``--resume``;
  its bytes are compared with the uninterrupted run's.

Model: ``--model DIR``, or a stand-in built here with random weights: ParsBERT v1's tokenizer (when the shared
folder has it) and ``--layers`` x ``--hidden``; the memory runs use ``--rss-model`` (default ``tiny``: 1 x 32, so
200k records take minutes; what is measured is whether memory grows with the input, which the model does not
change). Texts: PEYMA's sentences joined back into raw text, ``--sentences`` per record (``--rss-sentences`` in the
memory runs), or synthetic ones without the data.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from parsner.paths import parsbert_v1_tokenizer_dir, shared_data_dir  # noqa: E402

LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER", "B-DAT", "I-DAT"]


def sentences() -> tuple[list[str], str]:
    """Raw sentence texts: PEYMA's (train + test), else synthetic."""
    from parsner.data.readers import read_file

    root = shared_data_dir() / "peyma" / "hooshvare_split"
    files = [root / "train.txt", root / "test.txt"]
    if all(f.is_file() for f in files):
        sents = [" ".join(s.tokens) for f in files for s in read_file(f).sentences]
        return sents, f"PEYMA train+test sentences ({root})"
    words = "علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت سازمان ملل متحد اعلام کرد".split()
    rng = random.Random(0)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 30))) for _ in range(5000)], "synthetic"


def write_archive(path: Path, n: int, sents: list[str], per_record: tuple[int, int] = (1, 4)) -> Path:
    rng = random.Random(n)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = " ".join(rng.choice(sents) for _ in range(rng.randint(*per_record)))
            rec = {"id": f"news-{i:07d}", "text": text, "meta": {"منبع": "خبرگزاری", "rank": i % 97}}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def build_standin(out: Path, layers: int, hidden: int, sents: list[str]) -> str:
    import torch

    from parsner.data.normalize import PersianNormalizer
    from parsner.inference.standins import build_tiny_model, build_tiny_tokenizer

    tok_dir = parsbert_v1_tokenizer_dir()
    if (tok_dir / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tok_dir))
        desc = f"ParsBERT v1 tokenizer, {layers} x {hidden}, random weights"
    else:
        tok = build_tiny_tokenizer([s.split() for s in sents[:2000]], vocab_size=4000)
        desc = f"tiny tokenizer, {layers} x {hidden}, random weights (ParsBERT tokenizer not found)"
    torch.manual_seed(0)
    heads = max(1, hidden // 64)
    model = build_tiny_model(len(tok), LABELS, pad_token_id=tok.pad_token_id or 0, layers=layers, hidden=hidden,
                             heads=heads, intermediate=4 * hidden)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    PersianNormalizer().save(out)
    (out / "parsner.json").write_text(json.dumps({"max_length": 512, "stride": 128, "stand_in": desc}))
    return desc


def tree_rss_mib(root: int) -> float:
    """Sum of VmRSS over ``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{p}/status") as f:
                rss[int(p)] = next((int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:")), 0.0)
            children.setdefault(ppid, []).append(int(p))
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def run_predict(model: Path, src: Path, out: Path, extra: list[str], *, stop_after: int | None = None,
                threads: int | None = None) -> dict[str, Any]:
    """One ``parsner predict`` subprocess: wall time, first output, peak RSS (wait4 and /proc tree), exit code."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    argv = [sys.executable, "-m", "parsner", "predict", "--model", str(model), "--input", str(src), "--output",
            str(out), "--batch-size", "32", "-q", *extra]
    partial = out.with_name(out.name + ".partial")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    peak_tree = 0.0
    while True:  # wait4, not Popen.poll: only wait4 hands back the child's own rusage (its peak RSS)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        peak_tree = max(peak_tree, tree_rss_mib(proc.pid))
        size = partial.stat().st_size if partial.exists() else 0
        if first is None and size > 0:
            first = time.perf_counter() - t0
        if stop_after is not None and size >= stop_after:
            proc.send_signal(signal.SIGTERM)
            stop_after = None
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    return {"argv": " ".join(argv[3:]), "exit": proc.returncode, "wall_s": round(wall, 2),
            "first_output_s": None if first is None else round(first, 2),
            "peak_rss_mib_wait4": round(usage.ru_maxrss / 1024, 1), "peak_rss_mib_tree": round(peak_tree, 1),
            "stderr_tail": err[-600:]}


def speed(model: Path, src: Path, n: int, work: Path, ray: bool) -> list[dict[str, Any]]:
    """Local with torch's default threads (one per core) and with one; Ray with 1 worker (all cores' threads) and
    2 (one thread each)."""
    rows = []
    engines: list[tuple[str, list[str], int | None]] = [("local", [], None), ("local, 1 thread", [], 1)]
    if ray:
        engines += [(f"ray, {w} worker(s)", ["--engine", "ray", "--workers", str(w)], None) for w in (1, 2)]
    for name, extra, threads in engines:
        res = run_predict(model, src, work / f"speed-{len(rows)}.jsonl", extra, threads=threads)
        steady = None
        if res["first_output_s"] is not None and res["wall_s"] > res["first_output_s"]:
            steady = (n - 32) / (res["wall_s"] - res["first_output_s"])
        rows.append({"engine": name, "omp_threads": threads, **res, "records_per_s_wall": round(n / res["wall_s"], 1),
                     "records_per_s_steady": None if steady is None else round(steady, 1)})
        print(f"  {name}: {res['wall_s']} s wall, first output {res['first_output_s']} s, steady "
              f"{rows[-1]['records_per_s_steady']} records/s (exit {res['exit']})", file=sys.stderr, flush=True)
    return rows


def memory(model: Path, sizes: list[int], sents: list[str], work: Path, ray: bool,
           per_record: tuple[int, int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        src = write_archive(work / f"rss-{n}.jsonl", n, sents, per_record)
        for name, extra in [("local", [])] + ([("ray, 2 workers", ["--engine", "ray", "--workers", "2"])] if ray
                                               else []):
            out = work / f"rss-{n}-{name[:3]}.jsonl"
            res = run_predict(model, src, out, extra, threads=None if extra else 1)
            rows.append({"records": n, "engine": name, "input_mib": round(src.stat().st_size / 2**20, 1), **res})
            print(f"  {n:,} records, {name}: peak RSS {res['peak_rss_mib_wait4']} MiB (wait4), "
                  f"{res['peak_rss_mib_tree']} MiB (tree), {res['wall_s']} s", file=sys.stderr, flush=True)
            out.unlink(missing_ok=True)
    return rows


def resume_check(model: Path, src: Path, work: Path) -> dict[str, Any]:
    full = work / "resume-full.jsonl"
    base = run_predict(model, src, full, [], threads=1)
    half = full.stat().st_size // 2
    cut = work / "resume.jsonl"
    stopped = run_predict(model, src, cut, [], stop_after=half, threads=1)
    resumed = run_predict(model, src, cut, ["--resume"], threads=1)
    same = cut.is_file() and cut.read_bytes() == full.read_bytes()
    return {"records": sum(1 for _ in src.open("rb")), "stopped_exit": stopped["exit"],
            "resumed_exit": resumed["exit"], "byte_identical": same, "uninterrupted_s": base["wall_s"],
            "stopped_s": stopped["wall_s"], "resumed_s": resumed["wall_s"]}


def _range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a trained run (default: a random-weight stand-in built here)")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--records", type=int, default=5000, help="records in the speed runs")
    ap.add_argument("--rss", default="10000,200000", help="record counts of the memory runs ('' to skip)")
    ap.add_argument("--rss-model", choices=("tiny", "same"), default="tiny")
    ap.add_argument("--sentences", default="1-4", help="PEYMA sentences per record in the speed runs (A-B)")
    ap.add_argument("--rss-sentences", default="1-1", help="sentences per record in the memory runs (A-B)")
    ap.add_argument("--no-ray", action="store_true", help="only the local engine")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    from parsner.envinfo import report

    ray = not args.no_ray
    if ray:
        try:
            import ray as _  # noqa: F401
        except ImportError:
            print("bench_archive: Ray is not installed; local engine only", file=sys.stderr)
            ray = False
    sents, text_source = sentences()
    result: dict[str, Any] = {"machine": report(full=False), "texts": text_source,
                              "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            model = work / "model"
            result["model"] = build_standin(model, args.layers, args.hidden, sents)
        else:
            result["model"] = str(model)
        src = write_archive(work / "speed.jsonl", args.records, sents, _range(args.sentences))
        result["speed"] = {"records": args.records, "input_mib": round(src.stat().st_size / 2**20, 2),
                           "rows": speed(model, src, args.records, work, ray)}
        sizes = [int(x) for x in args.rss.split(",") if x.strip()]
        if sizes:
            rss_model = model
            if args.rss_model == "tiny":
                rss_model = work / "rss-model"
                result["rss_model"] = build_standin(rss_model, 1, 32, sents)
            result["memory"] = memory(rss_model, sizes, sents, work, ray, _range(args.rss_sentences))
            result["resume"] = resume_check(rss_model, work / f"rss-{sizes[0]}.jsonl", work)
    result["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, ensure_ascii=False, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
