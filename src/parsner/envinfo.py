"""What this install runs on, for bug reports (``parsner env``) and beside every benchmark figure.

Versions come from the installed distributions' metadata, so a package that fails to import is still named; torch
and onnxruntime are imported only for what metadata cannot say (CUDA/MPS, execution providers, threads).
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions a bug report needs, in the pipeline's order.
PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "huggingface-hub", "accelerate", "safetensors",
            "numpy", "seqeval", "onnxruntime", "onnx", "fastapi", "uvicorn", "hazm", "ray")
#: CPU flags that decide which kernels torch and onnxruntime dispatch to (as /proc/cpuinfo names them).
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile",
              "amx_int8", "amx_bf16")
#: Overrides :func:`onednn_linear_helps` (``1``/``0``).
ONEDNN_ENV = "PARSNER_ONEDNN_LINEAR"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_fields() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines()) if k.strip()}


def machine() -> dict[str, Any]:
    """The CPU and OS: model, logical cores (and those this process may use), SIMD flags, platform."""
    info = cpu_fields()
    flags = set(info.get("flags", "").split())
    model = info.get("model name") or platform.processor() or platform.machine()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        # A VM often names only "AMD EPYC"; vendor, family and model tell the generation (AMD family 25 with
        # AVX-512: Zen 4, 512-bit operations at half rate; family 26: Zen 5, full width).
        "vendor": info.get("vendor_id"),
        "cpu_family": _int(info.get("cpu family")),
        "cpu_model": _int(info.get("model")),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "simd": [f for f in SIMD_FLAGS if f in flags] if flags else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _torch() -> dict[str, Any]:
    if package_version("torch") is None:
        return {"installed": False}
    try:
        import torch
    except Exception as exc:  # a broken torch is exactly what a bug report needs to show
        return {"installed": True, "import_error": f"{type(exc).__name__}: {exc}"}
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    return {
        "installed": True,
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "mps_available": bool(mps and mps.is_available()),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cpu_capability": _torch_cpu_capability(torch),
        "tagger_linear": _tagger_linear(torch),
    }


def _tagger_linear(torch: Any) -> str:
    """Which kernels the Tagger's fp32 Linear layers use here (:func:`onednn_linear_helps`)."""
    mkldnn = getattr(torch.backends, "mkldnn", None)
    return "oneDNN" if mkldnn is not None and mkldnn.is_available() and onednn_linear_helps() else "torch default"


def _torch_cpu_capability(torch: Any) -> str | None:
    """The SIMD level torch's CPU kernels dispatch to (``AVX512``, ``AVX2``, ...)."""
    getter = getattr(getattr(torch, "backends", None), "cpu", None)
    try:
        return str(getter.get_cpu_capability()) if getter else None
    except Exception:
        return None


def _onnxruntime() -> dict[str, Any] | None:
    if package_version("onnxruntime") is None:
        return None
    try:
        import onnxruntime
    except Exception as exc:
        return {"import_error": f"{type(exc).__name__}: {exc}"}
    return {"version": onnxruntime.__version__, "providers": onnxruntime.get_available_providers()}


def _paths() -> dict[str, Any]:
    from parsner.paths import REPO_ROOT, SHARED_ENV, shared_dir

    try:
        from huggingface_hub import constants

        hub_cache = str(constants.HF_HUB_CACHE)
    except Exception:
        hub_cache = None
    shared = shared_dir()
    return {
        "hf_hub_cache": hub_cache,
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE"),
        "parsner_shared": str(shared),
        "parsner_shared_from": (f"${SHARED_ENV}" if os.environ.get(SHARED_ENV) else
                                "../shared beside the checkout" if (REPO_ROOT / "pyproject.toml").is_file() else
                                f"unset: an installed parsner finds the corpora only through ${SHARED_ENV}"),
        "parsner_shared_exists": shared.is_dir(),
    }


def report(full: bool = True) -> dict[str, Any]:
    """Everything ``parsner env`` prints. ``full=False`` skips the paths (for benchmark records)."""
    from parsner._version import __version__

    out: dict[str, Any] = {
        "parsner": __version__,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
        "machine": machine(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "torch": _torch(),
        "onnxruntime": _onnxruntime(),
        "threads_env": {name: os.environ.get(name) for name in THREAD_VARIABLES},
    }
    if full:
        out["paths"] = _paths()
    return out


def format_report(info: dict[str, Any]) -> str:
    """The report as ``- key: value`` lines, ready to paste into an issue."""
    m, t, ort = info["machine"], info["torch"], info["onnxruntime"]
    lines = [
        f"- parsner: {info['parsner']}",
        f"- Python: {info['python']} ({info['python_implementation']}, {info['executable']})",
        f"- platform: {m['platform']}",
        f"- CPU: {cpu_name(m)}; {m['logical_cores']} logical cores ({m['usable_cores']} usable); "
        f"SIMD: {', '.join(m['simd']) if m['simd'] else 'unknown'}",
    ]
    if t.get("version"):
        gpu = ", ".join(t["cuda_devices"]) if t["cuda_available"] else "no"
        lines.append(f"- torch: {t['version']} (CUDA build: {t['cuda_build'] or 'none'}; CUDA available: {gpu}; "
                     f"MPS available: {'yes' if t['mps_available'] else 'no'}; CPU kernels: "
                     f"{t['cpu_capability'] or 'unknown'}; Tagger Linear layers: {t['tagger_linear']}; threads: "
                     f"{t['threads']}, inter-op {t['interop_threads']})")
    else:
        lines.append(f"- torch: {t.get('import_error') or 'not installed'}")
    for name, version in info["packages"].items():
        if name != "torch":
            lines.append(f"- {name}: {version or 'not installed'}")
    if ort and ort.get("providers"):
        lines.append(f"- onnxruntime providers: {', '.join(ort['providers'])}")
    elif ort:
        lines.append(f"- onnxruntime: {ort['import_error']}")
    threads = ", ".join(f"{k}={v}" for k, v in info["threads_env"].items() if v is not None) or "none set"
    lines.append(f"- thread settings: {threads}")
    if "paths" in info:
        p = info["paths"]
        lines.append(f"- HF cache: {p['hf_hub_cache']} (HF_HUB_OFFLINE={p['hf_hub_offline'] or 'unset'})")
        lines.append(f"- PARSNER_SHARED: {p['parsner_shared']} (from {p['parsner_shared_from']}; "
                     f"{'present' if p['parsner_shared_exists'] else 'absent'})")
    return "\n".join(lines)


def cpu_name(m: dict[str, Any]) -> str:
    """``AMD EPYC (AuthenticAMD family 26 model 2)``: the model name and what tells its generation."""
    ids = " ".join(f"{k} {m[key]}" for k, key in (("family", "cpu_family"), ("model", "cpu_model"))
                   if m.get(key) is not None)
    extra = " ".join(x for x in (m.get("vendor"), ids) if x)
    return f"{m['cpu']} ({extra})" if extra else str(m["cpu"])


def bench_record(**threads: Any) -> dict[str, Any]:
    """What a benchmark records beside its figures: :func:`report` without the paths, the threads it ran
    with (``threads``, e.g. ``torch=2, onnxruntime=2``) and the load average when it was taken (a shared
    machine's figures say how busy it was)."""
    info = report(full=False)
    info["bench_threads"] = {k: v for k, v in threads.items() if v is not None}
    info["load_average_1min"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    return info


def bench_summary(info: dict[str, Any]) -> str:
    """One line naming the machine of a benchmark (:func:`bench_record`), for its printed output."""
    m, t, ort = info["machine"], info["torch"], info["onnxruntime"]
    parts = [f"machine: {cpu_name(m)}, {m['logical_cores']} logical cores ({m['usable_cores']} usable)",
             f"SIMD {', '.join(m['simd']) if m['simd'] else 'unknown'}"]
    if t.get("version"):
        parts.append(f"torch {t['version']} ({t['cpu_capability'] or '?'} kernels, Tagger Linear: "
                     f"{t['tagger_linear']}, {t['threads']} threads)")
    parts.append(f"onnxruntime {ort['version']}" if ort and ort.get("version") else "onnxruntime not installed")
    ran = ", ".join(f"{k} {v}" for k, v in info.get("bench_threads", {}).items())
    env = ", ".join(f"{k}={v}" for k, v in info["threads_env"].items() if v is not None) or "no thread variables"
    parts.append(f"threads: {ran + '; ' if ran else ''}{env}")
    if info.get("load_average_1min") is not None:
        parts.append(f"load average {info['load_average_1min']}")
    return "; ".join(parts)

def onednn_linear_helps() -> bool:
    """Whether torch's fp32 Linear layers are faster through oneDNN than through MKL on this CPU.

    torch hands fp32 matrix products to MKL, which picks its kernels by CPU *vendor*: on AMD it runs AVX2 code
    even where AVX-512 exists. oneDNN, also inside torch, picks by CPU *features*. On AMD Zen 5 (CPU family 26),
    whose AVX-512 units are full width, a 1536 x 256 x 1024 product ran at 216 GFLOP/s through oneDNN against
    98 through MKL on one thread (eval/RESULTS.md section 8). Elsewhere torch's default stays: Intel CPUs get
    AVX-512 from MKL already, and Zen 4 runs 512-bit operations at half rate (not measured here).
    ``$PARSNER_ONEDNN_LINEAR`` = ``1``/``0`` overrides the choice.
    """
    forced = os.environ.get(ONEDNN_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    info = cpu_fields()
    family = info.get("cpu family", "")
    return (info.get("vendor_id") == "AuthenticAMD" and "avx512f" in info.get("flags", "").split()
            and family.isdigit() and int(family) >= 26)
