"""``parsner env [--json]``: the versions, machine and settings a bug report needs (like ``transformers env``)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "env",
        help="print versions, machine and settings for a bug report",
        description=(
            "Print the versions of parsner, Python, torch (with CUDA/MPS availability), transformers, datasets, "
            "tokenizers, numpy, onnxruntime (with its providers), fastapi and hazm; the platform, CPU and its SIMD "
            "flags; thread settings; and where the HF cache and PARSNER_SHARED point. Paste it into a bug report."
        ),
    )
    p.add_argument("--json", action="store_true", help="the same as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from parsner.envinfo import format_report, report

    info = report()
    print(json.dumps(info, ensure_ascii=False, indent=1) if args.json else format_report(info))
    return 0
