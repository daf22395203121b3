"""Why ONNX Runtime's lead over torch depends on the CPU: GEMM throughput per library, the model alone per backend,
and per-operator profiles (onnxruntime's profiler beside torch.profiler), all in one process, rows interleaved.

    python eval/profile_backends.py --model RUN_DIR --onnx FP32_EXPORT --int8 INT8_EXPORT [--portable EXPORT]
                                    [--threads 2] [--batch 32] [--length 48] [--json FILE]

* GEMM: an fp32 ``(batch*length) x hidden x intermediate`` product on one thread through torch's default path
  (MKL on x86), through oneDNN (torch's other library), through oneDNN capped at AVX2 (``ONEDNN_MAX_CPU_ISA``
  in a child process) and through onnxruntime's MLAS; GFLOP/s, best of 30.
* Model alone: a ``batch x length`` batch of random ids, ``--runs`` forward passes per round, ``--rounds``
  rounds with the rows in turn (a slow spell of a shared machine hits every row alike); best and median ms.
  Rows: torch (default Linear), torch (oneDNN Linear), ORT fp32 fused attention, ORT fp32 ``--portable``,
  ORT int8, ORT int8 with the SkipLayerNormalization fusion on (onnxruntime's default; parsner turns it off).
* Profiles: share of time per operator, torch (default Linear) and each ORT session, at ``--threads``.

The machine (CPU model, vendor, family and model numbers, SIMD flags, versions, threads, load) heads the output.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------------------------------------ GEMM


def gemm_rates(m: int, k: int, n: int) -> dict[str, float]:
    """GFLOP/s of one fp32 ``m x k @ k x n`` product on one thread, per library (best of 30)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F
    from onnx import TensorProto, helper, numpy_helper

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((n, k), dtype=np.float32)
    ta, tw = torch.from_numpy(a), torch.from_numpy(w)
    wd, ad = tw.to_mkldnn(), ta.to_mkldnn()
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "w"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
                              [numpy_helper.from_array(np.ascontiguousarray(w.T), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    runs = {"torch default (MKL on x86)": lambda: F.linear(ta, tw),
            "torch oneDNN": lambda: F.linear(ad, wd),
            "onnxruntime MLAS": lambda: sess.run(None, {"a": a})}
    flop = 2 * m * k * n
    with torch.inference_mode():
        for fn in runs.values():
            timed(fn, 3)
        return {name: round(flop / min(timed(fn, 30)) / 1e9, 1) for name, fn in runs.items()}


def gemm_child(m: int, k: int, n: int, isa: str) -> float | None:
    """oneDNN's rate with its kernels capped at ``isa`` (the variable is read when oneDNN starts)."""
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'eval')!r}); import profile_backends as p; "
            f"print(p.gemm_rates({m}, {k}, {n})['torch oneDNN'])")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    try:
        return float(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------ models


def ort_session(path: Path, threads: int, disabled: list[str], profile: bool = False) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="parsner-prof-")) / "ort")
    return ort.InferenceSession(str(path / "model.onnx"), opts, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled)


def model_rows(args: argparse.Namespace, ids: Any, mask: Any) -> dict[str, Callable[[], Any]]:
    """One callable per row: a forward pass of the same batch."""
    import numpy as np
    import torch

    from parsner.inference.backends import ORT_DISABLED_OPTIMIZERS, TorchRunner
    from parsner.inference.modeling import load_for_inference

    rows: dict[str, Callable[[], Any]] = {}
    for name, fast in (("torch, default Linear", False), ("torch, oneDNN Linear", True)):
        os.environ["PARSNER_ONEDNN_LINEAR"] = "1" if fast else "0"
        runner = TorchRunner(load_for_inference(str(args.model), device="cpu")[0], "cpu", fast_linear=fast)
        rows[name] = lambda r=runner: r(ids, mask)
    os.environ.pop("PARSNER_ONEDNN_LINEAR", None)
    feed = {"input_ids": ids, "attention_mask": mask}
    exports = [("ORT fp32, fused attention", args.onnx, []), ("ORT fp32, --portable", args.portable, []),
               ("ORT int8", args.int8, list(ORT_DISABLED_OPTIMIZERS)),
               ("ORT int8, SkipLayerNorm fused (ORT default)", args.int8, [])]
    for name, path, disabled in exports:
        if path is None:
            continue
        sess = ort_session(path, args.threads, disabled)
        names = {i.name for i in sess.get_inputs()}
        f = {**feed, **({"token_type_ids": np.zeros_like(ids)} if "token_type_ids" in names else {})}
        rows[name] = lambda s=sess, f=f: s.run(["logits"], f)
    torch.set_num_threads(args.threads)
    return rows


def time_rows(rows: dict[str, Callable[[], Any]], runs: int, rounds: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in rows}
    for fn in rows.values():
        timed(fn, 3)
    for _ in range(rounds):
        for name, fn in rows.items():
            times[name] += timed(fn, runs)
    return {name: {"best_ms": round(1000 * min(v), 1), "median_ms": round(1000 * statistics.median(v), 1)}
            for name, v in times.items()}


# ------------------------------------------------------------------------------------------------ profiles


def ort_profile(path: Path, threads: int, disabled: list[str], feed: dict[str, Any], runs: int) -> dict[str, Any]:
    """Mean ms per run and share of kernel time per operator type (onnxruntime's profiler)."""
    sess = ort_session(path, threads, disabled, profile=True)
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feed.items() if k in names}
    for _ in range(runs):
        sess.run(["logits"], feed)
    events = json.loads(Path(sess.end_profiling()).read_text(encoding="utf-8"))
    per_op: collections.Counter[str] = collections.Counter()
    nodes: collections.Counter[str] = collections.Counter()
    run_us = [e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
            nodes[e["args"]["op_name"]] += 1
    total = sum(per_op.values()) or 1
    return {"ms_per_run": round(statistics.mean(run_us) / 1000, 1),
            "ops": [{"op": op, "ms_per_run": round(us / len(run_us) / 1000, 2), "share": round(us / total, 3),
                     "nodes": nodes[op] // len(run_us)} for op, us in per_op.most_common(8)]}


def torch_profile(model_dir: Path, threads: int, ids: Any, mask: Any, runs: int) -> dict[str, Any]:
    """Mean ms per run and share of self CPU time per aten operator (torch.profiler), default Linear."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from parsner.inference.backends import TorchRunner
    from parsner.inference.modeling import load_for_inference

    torch.set_num_threads(threads)
    runner = TorchRunner(load_for_inference(str(model_dir), device="cpu")[0], "cpu")
    runner(ids, mask)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            runner(ids, mask)
    wall = (time.perf_counter() - t0) / runs
    stats = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in stats) or 1
    return {"ms_per_run": round(1000 * wall, 1),
            "ops": [{"op": e.key, "ms_per_run": round(e.self_cpu_time_total / runs / 1000, 2),
                     "share": round(e.self_cpu_time_total / total, 3), "calls": e.count // runs} for e in stats[:8]]}


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="trained run directory (torch)")
    ap.add_argument("--onnx", type=Path, required=True, help="its fp32 export (parsner export --onnx)")
    ap.add_argument("--int8", type=Path, required=True, help="its int8 export (--quantize int8)")
    ap.add_argument("--portable", type=Path, help="its --portable fp32 export (optional row)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=48)
    ap.add_argument("--runs", type=int, default=10, help="forward passes per row per round (default 10)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import numpy as np

    from parsner.envinfo import bench_record, bench_summary

    cfg = json.loads((args.model / "config.json").read_text(encoding="utf-8"))
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    ids = np.random.default_rng(0).integers(5, cfg["vocab_size"], size=(args.batch, args.length), dtype=np.int64)
    mask = np.ones_like(ids)
    m = args.batch * args.length
    gemm = gemm_rates(m, hidden, inter)
    gemm["torch oneDNN capped at AVX2"] = gemm_child(m, hidden, inter, "AVX2")
    models = time_rows(model_rows(args, ids, mask), args.runs, args.rounds)
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    profiles = {"torch, default Linear": torch_profile(args.model, args.threads, ids, mask, args.runs),
                "ORT fp32, fused attention": ort_profile(args.onnx, args.threads, [], feed, args.runs),
                "ORT int8": ort_profile(args.int8, args.threads, ["SkipLayerNormFusion"], feed, args.runs),
                "ORT int8, SkipLayerNorm fused": ort_profile(args.int8, args.threads, [], feed, args.runs)}
    result = {"shape": {"batch": args.batch, "length": args.length, "hidden": hidden, "intermediate": inter,
                        "layers": cfg["num_hidden_layers"]}, "threads": args.threads, "gemm_gflops_1thread": gemm,
              "model_alone": models, "profiles": profiles,
              "machine": bench_record(torch=args.threads, onnxruntime=args.threads)}
    print(render(result, bench_summary(result["machine"])))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def render(r: dict[str, Any], machine: str) -> str:
    s = r["shape"]
    lines = [machine, "", f"GEMM, fp32, one thread, {s['batch'] * s['length']} x {s['hidden']} x {s['intermediate']}:",
             "", "| library | GFLOP/s |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in r["gemm_gflops_1thread"].items()]
    lines += ["", f"Model alone ({s['layers']} layers x {s['hidden']}), a {s['batch']} x {s['length']} batch, "
              f"{r['threads']} threads:", "", "| backend | best ms | median ms |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['best_ms']} | {v['median_ms']} |" for k, v in r["model_alone"].items()]
    for name, p in r["profiles"].items():
        lines += ["", f"{name}: {p['ms_per_run']} ms per run; top operators:", ""]
        lines += [f"- {o['op']}: {o['ms_per_run']} ms ({100 * o['share']:.1f}%)" for o in p["ops"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
