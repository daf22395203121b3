"""Inference backends for the :class:`~parsner.inference.tagger.Tagger`: a *runner* maps one padded batch to logits.

A runner is called as ``runner(input_ids, attention_mask)`` with two ``int64`` numpy arrays of shape
``(batch, sequence)`` and returns ``float32`` logits of shape ``(batch, sequence, labels)``. It also
exposes ``config`` (the HF config: ``id2label``, ``max_position_embeddings``), ``device`` and ``model``
(the torch module, or ``None``). Everything else (windows, batching, decoding, offsets) is the Tagger's,
so both backends give the same words, windows and spans.

* :class:`TorchRunner` wraps a ``transformers`` token classifier (``torch.inference_mode``).
* :class:`OrtRunner` runs ``model.onnx`` (written by ``parsner export DIR --onnx``) with onnxruntime on
  CPU; torch is not imported on this path.

A directory holding ``model.onnx`` loads with ONNX Runtime; one holding ``model.safetensors`` with torch; one
holding ``model.crfsuite`` (a feature CRF, :mod:`parsner.inference.crf_tagger`: it tags words, not sub-words) with
python-crfsuite (:func:`resolve_backend`); the loading itself is :mod:`parsner.inference.modeling`'s.
``pip install parsner[onnx]`` installs onnxruntime.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from parsner.envinfo import onednn_linear_helps
from parsner.errors import ConfigError, ModelLoadError

BACKENDS = ("torch", "onnx", "crf")
ONNX_FILE = "model.onnx"
ONNX_EXTRA_HINT = "install the ONNX extra: pip install 'parsner[onnx]'"


#: ``0`` or ``1`` forces torch's fp32 Linear layers off or onto oneDNN on CPU; unset: :func:`onednn_linear_helps`.

#: onnxruntime graph fusions left off at load. SkipLayerNormalization (residual add + LayerNorm in one op) took
#: 22% of an int8 4-layer x 256 graph's time against 5% for the separate Add and LayerNorm nodes, on an AMD EPYC
#: (Zen 5) at 1 and 2 threads; without it the int8 model ran 1.2x faster (eval/RESULTS.md section 8). The fp32
#: exports never get it (parsner export leaves it off), so this only changes int8 graphs.
ORT_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class TorchRunner:
    """A ``transformers`` token classifier in eval mode on ``device`` (default: CUDA if available).

    ``fast_linear=True`` lets the runner move the fp32 ``nn.Linear`` layers of ``model`` (in place: pass only a
    model nobody else uses) onto oneDNN on a CPU where that is faster (:func:`onednn_linear_helps`);
    ``self.fast_linear`` says whether it did. Logits then differ from MKL's by rounding only (~1e-6).
    """

    backend = "torch"

    def __init__(self, model: Any, device: str | None = None, *, fast_linear: bool = False) -> None:
        import torch

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.config = model.config
        self.fast_linear = bool(
            fast_linear and self.device.type == "cpu" and torch.backends.mkldnn.is_available()
            and onednn_linear_helps() and onednn_linears(self.model)
        )

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch

        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.from_numpy(input_ids).to(self.device),
                attention_mask=torch.from_numpy(attention_mask).to(self.device),
            ).logits
        return logits.float().cpu().numpy()


class OrtRunner:
    """``model.onnx`` in an onnxruntime CPU session (all graph optimisations on).

    ``threads``: intra-op threads; default ``$OMP_NUM_THREADS`` when set (so a process told to use one
    thread does), else onnxruntime's own default (one per physical core).
    """

    backend = "onnx"
    model = None
    device = "cpu"

    def __init__(self, onnx_path: str | Path, config: Any, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is None:
            env = os.environ.get("OMP_NUM_THREADS", "").strip()
            threads = int(env) if env.isdigit() else 0
        opts.intra_op_num_threads = max(0, int(threads))
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"],
                                                disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS))
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            raise ModelLoadError(f"{onnx_path}: onnxruntime cannot load this model: {exc}") from exc
        names = {i.name for i in self.session.get_inputs()}
        if not {"input_ids", "attention_mask"} <= names:
            raise ModelLoadError(f"{onnx_path}: expected inputs input_ids and attention_mask, found {sorted(names)}")
        # BERT-style graphs may also take token_type_ids; a single-segment input is all zeros.
        self._token_types = "token_type_ids" in names
        self.config = config
        self.path = Path(onnx_path)

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        import numpy as np

        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self._token_types:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        (logits,) = self.session.run(["logits"], feed)
        return logits.astype("float32", copy=False)



def onednn_linears(model: Any) -> int:
    """Replace every fp32 ``nn.Linear`` of ``model`` (in place) by one computed by oneDNN; returns how many."""
    import torch

    cls = _onednn_linear_class()
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear and child.weight.dtype == torch.float32:
                setattr(parent, name, cls(child))
                n += 1
    return n


@functools.cache
def _onednn_linear_class() -> type:
    import torch
    import torch.nn.functional as F

    class OneDnnLinear(torch.nn.Module):
        """``nn.Linear`` for inference with its weights in oneDNN's layout; input and output stay dense."""

        def __init__(self, linear: Any) -> None:
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.weight = linear.weight.detach().to_mkldnn()
            self.bias = linear.bias.detach().to_mkldnn() if linear.bias is not None else None

        def forward(self, x: Any) -> Any:
            return F.linear(x.contiguous().to_mkldnn(), self.weight, self.bias).to_dense()

    return OneDnnLinear


def as_runner(model: Any, device: str | None = None) -> Any:
    """``model`` itself when it already is a runner (it names its ``backend``), else a :class:`TorchRunner`."""
    if isinstance(getattr(model, "backend", None), str):
        return model
    return TorchRunner(model, device)


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelLoadError(f"the ONNX backend needs onnxruntime: {ONNX_EXTRA_HINT}") from exc
    return onnxruntime


def resolve_backend(path_or_id: str | os.PathLike[str], backend: str | None) -> str:
    """``"onnx"``, ``"torch"`` or ``"crf"`` for this model: as asked, or ONNX when the directory holds
    ``model.onnx``, the CRF when it holds ``model.crfsuite``."""
    from parsner.inference.crf_tagger import is_crf_dir

    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    path = Path(path_or_id)
    if is_crf_dir(path):
        if backend not in (None, "crf"):
            raise ModelLoadError(f"{path_or_id} is a feature CRF (model.crfsuite): it runs only as itself, "
                                 f"not with backend {backend!r}")
        return "crf"
    if backend == "crf":
        raise ModelLoadError(f"{path_or_id}: no model.crfsuite here (train one with `model: crf`)")
    has_onnx = (path / ONNX_FILE).is_file()
    if backend == "onnx" and not has_onnx:
        raise ModelLoadError(
            f"{path_or_id}: no {ONNX_FILE} here; create one with `parsner export {path_or_id} --onnx --out DIR`"
        )
    if backend == "torch" and has_onnx and not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"{path_or_id} holds only an ONNX model ({ONNX_FILE}); use backend='onnx'")
    if backend is None:
        return "onnx" if has_onnx else "torch"
    return backend

