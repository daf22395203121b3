"""Export a trained run to ONNX for onnxruntime: ``parsner export DIR --onnx [--quantize int8] --out OUT``.

OUT holds ``model.onnx`` (inputs ``input_ids``/``attention_mask``, output ``logits``; batch and sequence
axes dynamic), ``config.json`` (labels, positions), the tokenizer, ``normalizer.json``, ``parsner.json``
(with an ``onnx`` section: opset, quantisation, the parity check below) and the run's model card and
metrics, so :meth:`parsner.inference.tagger.Tagger.from_pretrained` and every ``--model`` option load it with
onnxruntime.

The graph comes from ``torch.onnx.export`` (the TorchScript exporter: one trace, no extra dependency;
the dynamo exporter needs onnxscript and gave the same logits), traced with the plain attention; an fp32
BERT graph then gets onnxruntime's fused ``Attention`` op per layer. int8 is onnxruntime's dynamic
quantisation of the MatMul weights (activations quantised on the fly), the ONNX counterpart of the
torch backend's ``quantize=True``. After writing, the exported model is run on a few padded batches of
different shapes and compared with torch, so a broken export fails here and not in production.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError, ModelLoadError
from parsner.inference.backends import ONNX_EXTRA_HINT, ONNX_FILE

OPSET = 17
QUANTIZE_CHOICES = ("int8",)
#: Files of the run directory that travel with the exported model (when present).
COPIED_FILES = ("normalizer.json", "README.md", "metrics.json", "run_config.yaml", "calibration.json")
#: fp32 export must reproduce torch's logits to this absolute tolerance (observed: ~1e-6).
FP32_TOLERANCE = 1e-3


def check_onnx_tools() -> None:
    """Fail with the install hint before any slow work when the ONNX extra is missing."""
    for mod in ("onnxruntime", "onnx"):
        try:
            __import__(mod)
        except ImportError as exc:
            raise ModelLoadError(f"parsner export --onnx needs {mod}: {ONNX_EXTRA_HINT}") from exc


def export_onnx(model_dir: str | Path, out: str | Path, *, quantize: str | None = None,
                overwrite: bool = False, portable: bool = False) -> dict[str, Any]:
    """Write the ONNX model directory ``out`` for the run in ``model_dir``; returns the export record.

    ``portable=True`` keeps standard ONNX operators only (no onnxruntime-specific fused attention), for
    runtimes other than onnxruntime; it is slower in onnxruntime.
    """
    from parsner.atomic import atomic_dir
    from parsner.inference.crf_tagger import is_crf_dir
    from parsner.inference.modeling import load_for_inference

    if quantize not in (None, *QUANTIZE_CHOICES):
        raise ConfigError(f"--quantize {quantize!r}: choose one of {', '.join(QUANTIZE_CHOICES)}")
    model_dir, out = Path(model_dir), Path(out)
    if is_crf_dir(model_dir):
        raise ConfigError(f"{model_dir} is a feature CRF (model.crfsuite), not a network: there is nothing to export")
    if (model_dir / ONNX_FILE).is_file() and not (model_dir / "model.safetensors").is_file():
        raise ConfigError(f"{model_dir} is already an ONNX export; give the trained run directory")
    if out.resolve() == model_dir.resolve():
        raise ConfigError("--out must be a new directory, not the model directory itself")
    check_onnx_tools()
    model, tokenizer, _normalizer, meta = load_for_inference(str(model_dir), device="cpu")
    with atomic_dir(out, overwrite=overwrite) as tmp:
        fp32 = tmp / ONNX_FILE
        _torch_export(model, fp32)
        check = None  # the fused graph's parity check, when the fusion was kept
        if quantize == "int8":
            _quantize_int8(fp32, tmp / "model.int8.onnx")
            (tmp / "model.int8.onnx").replace(fp32)
        elif not portable:
            check = _fuse_attention(model, tokenizer, fp32)
        fused = check is not None
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name in COPIED_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / name)
        check = check or parity_check(model, tokenizer, fp32)
        if quantize is None and check["max_abs_diff"] > FP32_TOLERANCE:
            raise ModelLoadError(f"ONNX export differs from torch (max |logit diff| {check['max_abs_diff']:.2e})")
        record = {"source": str(model_dir), "opset": OPSET, "quantize": quantize, "fused_attention": fused,
                  "parity": check}
        meta = {**meta, "onnx": record}
        (tmp / "parsner.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return record


def _torch_export(model: Any, path: Path) -> None:
    import torch

    model = model.to("cpu").eval()
    _eager_attention(model)
    # A padded example, so the traced graph is the one that handles padding.
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"}}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; correctness is checked after
        torch.onnx.export(
            model, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
            output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )


def _eager_attention(model: Any) -> None:
    """Trace the plain attention (matmul, mask add, softmax) rather than torch's fused SDPA.

    The SDPA trace carries NaN guards (IsNaN/Where) around the softmax; without them onnxruntime runs this
    graph about 5% faster on CPU (eval/RESULTS.md section 8), and the logits are the same to ~1e-6.
    """
    setter = getattr(model, "set_attn_implementation", None)
    if setter is None or getattr(model.config, "_attn_implementation", None) == "eager":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            setter("eager")
        except (ValueError, ImportError):  # an architecture without an eager path: keep what it has
            pass


def _fuse_attention(model: Any, tokenizer: Any, path: Path) -> dict[str, Any] | None:
    """Replace each layer's attention subgraph in the fp32 ``path`` by onnxruntime's fused ``Attention`` op.

    Only for BERT-family graphs, whose attention pattern onnxruntime's optimiser knows; the result is kept
    only when every layer fused and it still matches torch, and then its parity check is returned; else
    ``path`` stays as it was and the result is None. The optimiser's LayerNorm fusions are left off: on CPU
    they made this graph slower. An int8 export is quantised from the plain graph, which was as fast as the
    fused one there (eval/RESULTS.md section 8).
    """
    config = model.config
    if getattr(config, "model_type", None) != "bert":
        return None
    import logging

    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import AttentionMaskFormat, FusionOptions

    opts = FusionOptions("bert")
    opts.enable_skip_layer_norm = opts.enable_bias_skip_layer_norm = opts.enable_embed_layer_norm = False
    # The mask goes in as it is: the default would turn it into per-row lengths, which is wrong for a caller
    # that pads on the left or masks a hole (the Tagger pads on the right, other callers may not).
    opts.attention_mask_format = AttentionMaskFormat.AttentionMask
    fused_path = path.with_name("model.fused.onnx")
    quiet = logging.getLogger("onnxruntime")
    previous, check = quiet.level, None
    quiet.setLevel(logging.ERROR)  # the optimiser's per-fusion progress lines
    try:
        graph = optimizer.optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=0, optimization_options=opts)
        if graph.get_fused_operator_statistics().get("Attention", 0) == config.num_hidden_layers:
            graph.save_model_to_file(str(fused_path))
            check = parity_check(model, tokenizer, fused_path)
    except Exception:  # an optimiser failure only costs the fusion: the plain graph is kept
        check = None
    finally:
        quiet.setLevel(previous)
    if check is not None and check["max_abs_diff"] <= FP32_TOLERANCE:
        fused_path.replace(path)
        return check
    fused_path.unlink(missing_ok=True)
    return None


def _quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 (signed weights, per-tensor) of the MatMul/Gemm weights, as onnxruntime recommends for CPU."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Its advice to run shape pre-processing is for static quantisation; dynamic int8 needs none.
    logging.getLogger().addFilter(_drop_preprocess_advice)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])


def parity_check(model: Any, tokenizer: Any, onnx_path: Path) -> dict[str, Any]:
    """Run torch and onnxruntime on the same masked batches: max |logit diff| and argmax agreement."""
    import numpy as np
    import torch

    from parsner.inference.backends import OrtRunner

    runner = OrtRunner(onnx_path, model.config, threads=1)
    rng = np.random.default_rng(0)
    vocab = min(len(tokenizer), model.config.vocab_size)
    positions = getattr(model.config, "max_position_embeddings", None) or 512
    worst, same, total = 0.0, 0, 0
    for batch, width in ((1, 1), (1, 7), (3, 19), (5, min(64, positions))):
        ids = rng.integers(0, vocab, size=(batch, width), dtype=np.int64)
        mask = np.ones_like(ids)
        if batch > 1:
            mask[-1, width // 2 :] = 0  # padded on the right, as the Tagger pads
        if batch > 2:
            mask[0, : width // 3] = 0  # on the left, and a hole: callers of model.onnx may mask either way
            mask[1, width // 3 : width // 2] = 0
        with torch.inference_mode():
            ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
        got = runner(ids, mask)
        real = mask.astype(bool)
        worst = max(worst, float(np.abs(ref - got)[real].max()))
        same += int((ref.argmax(-1) == got.argmax(-1))[real].sum())
        total += int(real.sum())
    return {"max_abs_diff": worst, "argmax_agreement": same / total, "positions": total}


def _drop_preprocess_advice(record: Any) -> bool:
    return "pre-processing before quantization" not in record.getMessage()
