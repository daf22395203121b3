"""``parsner export DIR --onnx [--quantize int8] --out OUT``: a trained run as an ONNX Runtime model."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from parsner.errors import ConfigError, ModelLoadError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained model for ONNX Runtime (optionally int8)",
        description=(
            "Write the token classifier as ONNX (dynamic batch and sequence axes) with its tokenizer, "
            "normalizer.json and parsner.json. Tagger.from_pretrained(OUT) and every --model option then "
            "run it with onnxruntime. Needs the ONNX extra: pip install 'parsner[onnx]'."
        ),
    )
    p.add_argument("model", metavar="DIR", help="trained run directory (parsner train --out)")
    p.add_argument("--onnx", action="store_true", required=True, help="export to ONNX (the only format)")
    p.add_argument("--quantize", choices=["int8"], default=None, help="dynamic int8 quantisation of the weights")
    p.add_argument("--out", type=Path, required=True, help="new output directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT written by parsner export")
    p.add_argument("--portable", action="store_true",
                   help="standard ONNX operators only, for runtimes other than onnxruntime (fp32 keeps the plain "
                        "attention instead of onnxruntime's fused Attention op; slower in onnxruntime)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_dir():
        raise ModelLoadError(f"{args.model}: model directory not found")
    from parsner.inference.crf_tagger import is_crf_dir

    if is_crf_dir(model):
        raise ConfigError(f"{args.model} is a feature CRF (model.crfsuite), not a network: there is nothing to "
                          "export. predict, serve, eval and Tagger.from_pretrained load the run directory as it is")
    if not (model / "config.json").is_file():
        raise ModelLoadError(f"{args.model}: no config.json; give a trained run directory")
    if args.out.exists() and not args.overwrite:
        raise ConfigError(f"{args.out} already exists; choose another --out or pass --overwrite")
    if args.out.exists() and args.overwrite and not (args.out / "model.onnx").is_file():
        raise ConfigError(f"{args.out} exists and is not an ONNX export; parsner will not overwrite it")
    from parsner.inference.export import export_onnx

    t0 = time.perf_counter()
    record = export_onnx(model, args.out, quantize=args.quantize, overwrite=args.overwrite, portable=args.portable)
    parity = record["parity"]
    graph = f"{'int8' if args.quantize else 'fp32'} ONNX, opset {record['opset']}"
    if record.get("fused_attention"):
        graph += ", fused attention"
    print(
        f"parsner export: wrote {args.out} ({graph}) "
        f"in {time.perf_counter() - t0:.1f} s; against torch: max |logit diff| {parity['max_abs_diff']:.2e}, "
        f"argmax agreement {parity['argmax_agreement']:.2%} on {parity['positions']} positions",
        file=sys.stderr,
    )
    return 0
