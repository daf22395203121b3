"""``parsner serve --model DIR``: an HTTP API (``POST /v1/ner``) and a page to try it (``GET /``); with
``--label-studio``, a Label Studio ML backend too (:mod:`parsner.serving.labelstudio_backend`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from parsner.errors import ConfigError, ModelLoadError

SERVE_EXTRA_HINT = "install the serve extra: pip install 'parsner[serve]'"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP (POST /v1/ner) with a page to try it (GET /)",
        description=(
            "Serve a trained model (torch or ONNX export) over HTTP. POST /v1/ner with {\"text\": ...} or "
            "{\"texts\": [...]}; GET /health; GET /v1/model; GET / is a page to try it. Concurrent requests "
            "are micro-batched. Binds to localhost unless --host says otherwise. Needs the serve extra: "
            "pip install 'parsner[serve]'."
        ),
    )
    p.add_argument("--model", required=True, help="trained run directory, or a directory from parsner export")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, each with its own model (default 1)")
    p.add_argument("--backend", choices=["torch", "onnx"], default=None,
                   help="default: onnx when the directory holds model.onnx, else torch")
    p.add_argument("--max-batch-texts", type=int, default=64,
                   help="texts tagged together from concurrent requests (1: no micro-batching; default 64)")
    p.add_argument("--batch-window-ms", type=float, default=0.0,
                   help="how long a request waits for others to join its batch (default 0: requests that "
                        "queue while the model runs form the next batch)")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000, help="request body limit (default 1 MB)")
    p.add_argument("--max-texts", type=int, default=64, help="texts per request (default 64)")
    p.add_argument("--max-chars", type=int, default=100_000, help="characters per text (default 100000)")
    p.add_argument("--label-map", metavar="FILE|PRESET", default=None,
                   help="map the model's types (a preset or a YAML/JSON file of TYPE: TYPE, TYPE: O drops one), "
                        "as parsner predict --label-map does")
    from parsner.cli.labelstudio_options import add_arguments

    add_arguments(p)
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> dict:
    for name in ("port", "workers", "max_batch_texts", "max_body_bytes", "max_texts", "max_chars"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    if args.port > 65535:
        raise ConfigError("--port must be <= 65535")
    if args.batch_window_ms < 0:
        raise ConfigError("--batch-window-ms must be >= 0")
    return {"max_body_bytes": args.max_body_bytes, "max_texts": args.max_texts, "max_chars": args.max_chars,
            "max_batch_texts": args.max_batch_texts, "batch_window_ms": args.batch_window_ms}


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    if not Path(args.model).is_dir():
        raise ModelLoadError(f"{args.model}: model directory not found")
    if args.label_map is not None:
        from parsner.labels import load_label_map

        load_label_map(args.label_map)  # a bad map fails here, before the model loads
    from parsner.cli.labelstudio_options import options_from_args

    ls_options = options_from_args(args)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"parsner serve needs {exc.name}: {SERVE_EXTRA_HINT}") from exc
    from parsner.inference.tagger import Tagger
    from parsner.serving.server import ServeOptions, create_app

    model, ls = args.model, None
    if ls_options is not None:
        from parsner.cli.labelstudio_options import served_model
        from parsner.serving.labelstudio_backend import LabelStudioBackend

        model, version = served_model(ls_options, Path(args.model))
    # Loaded here even with several workers, so a bad model fails now with one message, not in each worker.
    tagger = Tagger.from_pretrained(model, device="cpu", backend=args.backend, label_map=args.label_map)
    where = f"http://{args.host}:{args.port}/"
    print(f"parsner serve: {model} ({tagger.runner.backend}) at {where} "
          f"(POST {where}v1/ner; page at {where})", file=sys.stderr, flush=True)
    if ls_options is not None:
        ls = LabelStudioBackend(model, ls_options, version=version, base_model=args.model)
        print(f"parsner serve: Label Studio model URL {where}label-studio (model version {ls.version}; "
              f"retraining {'on' if ls.retrainer else 'off'})", file=sys.stderr, flush=True)
    if args.workers == 1:
        app = create_app(tagger, str(model), ServeOptions(**options), label_studio=ls)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    del tagger
    os.environ["PARSNER_SERVE"] = json.dumps({"model": args.model, "backend": args.backend, "options": options,
                                              "label_map": args.label_map})
    uvicorn.run("parsner.serving.server:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning")
    return 0
