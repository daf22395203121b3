"""``parsner serve --model DIR``: an HTTP API (``POST /v1/ner``) and a page to try it (``GET /``); with
``--label-studio``, a Label Studio ML backend too (:mod:`parsner.serving.labelstudio_backend`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

from parsner.errors import ConfigError, ModelLoadError
from parsner.serving.auth import DEFAULT_USER, ServerAuth

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
    p.add_argument("--min-score", default=None, metavar="X",
                   help="leave out entities whose (calibrated) score is below X, from 0 to 1 (default: keep all): "
                        "the server-wide default of /v1/ner (a request may send \"min_score\") and of "
                        "--label-studio predictions")
    p.add_argument("--label-map", metavar="FILE|PRESET", default=None,
                   help="map the model's types (a preset or a YAML/JSON file of TYPE: TYPE, TYPE: O drops one), "
                        "as parsner predict --label-map does")
    g = p.add_argument_group("access (every route but GET /health needs credentials unless --no-auth)")
    g.add_argument("--token-file", type=Path, metavar="FILE",
                   help="read the server's token from FILE (its first line); else $PARSNER_TOKEN; else a new "
                        "token is made at start and printed. Callers send 'Authorization: Bearer TOKEN', basic "
                        "auth (user --auth-user, password TOKEN: Label Studio's Connect model form), or open "
                        "/?token=TOKEN once in a browser")
    g.add_argument("--auth-user", default=DEFAULT_USER, metavar="NAME",
                   help=f"the user name basic auth expects (default {DEFAULT_USER})")
    g.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept requests from pages of this origin (scheme://host[:port]; repeatable); "
                        "requests from other sites' pages are refused")
    g.add_argument("--no-auth", action="store_true",
                   help="serve without credentials: anyone who can reach the port can tag, and with "
                        "--label-studio set up projects and retrain (said on stderr at start)")
    from parsner.cli.labelstudio_options import add_arguments

    add_arguments(p)
    p.set_defaults(func=run)


def _origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"--allow-origin {value}: give an origin, scheme://host[:port], as a browser sends it")
    return f"{parts.scheme}://{parts.netloc}"


def server_auth(args: argparse.Namespace) -> ServerAuth:
    """The server's credentials from --token-file, $PARSNER_TOKEN or a new token (ConfigError: exit 2)."""
    origins = tuple(_origin(o) for o in args.allow_origin)
    if args.no_auth:
        if args.token_file is not None:
            raise ConfigError("--no-auth and --token-file contradict each other; give one")
        return ServerAuth.off(origins)
    token, where = os.environ.get("PARSNER_TOKEN"), "$PARSNER_TOKEN"
    if args.token_file is not None:
        where = f"--token-file {args.token_file}"
        try:
            token = args.token_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            why = "it is empty" if isinstance(exc, IndexError) else getattr(exc, "strerror", None) or exc
            raise ConfigError(f"{where}: cannot read a token: {why}") from None
    try:
        return ServerAuth(token, args.auth_user, origins) if token is not None else \
            ServerAuth.generate(args.auth_user, origins)
    except ValueError as exc:
        raise ConfigError(f"{where if token is not None else '--auth-user'}: {exc}") from None


def _options(args: argparse.Namespace) -> dict:
    from parsner.cli import check_min_score

    args.min_score = check_min_score(args.min_score)
    for name in ("port", "workers", "max_batch_texts", "max_body_bytes", "max_texts", "max_chars"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    if args.port > 65535:
        raise ConfigError("--port must be <= 65535")
    if args.batch_window_ms < 0:
        raise ConfigError("--batch-window-ms must be >= 0")
    return {"max_body_bytes": args.max_body_bytes, "max_texts": args.max_texts, "max_chars": args.max_chars,
            "max_batch_texts": args.max_batch_texts, "batch_window_ms": args.batch_window_ms,
            "min_score": args.min_score or 0.0}


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    auth = server_auth(args)
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
    _say_access(auth, where, args)
    if args.workers == 1:
        app = create_app(tagger, str(model), ServeOptions(**options), label_studio=ls, auth=auth)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    del tagger
    os.environ["PARSNER_SERVE"] = json.dumps({"model": args.model, "backend": args.backend, "options": options,
                                              "label_map": args.label_map, "auth": asdict(auth)})
    uvicorn.run("parsner.serving.server:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="warning")
    return 0


def _say_access(auth: ServerAuth, where: str, args: argparse.Namespace) -> None:
    """Tell the operator how to get in (the token only when it was made here: they set any other themselves)."""
    if not auth.enabled:
        exposed = "" if args.host in ("127.0.0.1", "localhost", "::1") else f" on {args.host}, beyond this machine"
        print(f"parsner serve: WARNING: authentication is OFF (--no-auth){exposed}: anyone who can reach the "
              "port can use every route", file=sys.stderr, flush=True)
    elif auth.generated:
        print(f"parsner serve: no token given (--token-file, $PARSNER_TOKEN); this run's token:\n  "
              f"{auth.usage(where)}", file=sys.stderr, flush=True)
    else:
        source = "--token-file" if args.token_file else "$PARSNER_TOKEN"
        print(f"parsner serve: credentials required (token from {source}; basic-auth user {auth.user})",
              file=sys.stderr, flush=True)
