"""Hugging Face caches laid out like the real Hub, for offline tests of hub-id loading.

``HF_HOME/hub/models--ORG--NAME/refs/main`` holds a commit id and the files live in
``snapshots/<commit>/``: exactly what ``from_pretrained("ORG/NAME")`` resolves with ``HF_HUB_OFFLINE=1``.
The checkpoints are shaped like the published Persian ones: a 2020-era base masked-LM repository with
``pytorch_model.bin``, ``config.json`` and ``vocab.txt`` only (no safetensors, no tokenizer.json), and
token classifiers whose ``id2label`` follows each label convention found on the Hub.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

#: Canonical labels of the reference classifier every NER fixture is derived from.
CANONICAL = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]

#: One published naming convention per entry: canonical type -> the checkpoint's spelling, and the separator.
CONVENTIONS: dict[str, dict[str, Any]] = {
    # HooshvareLab/bert-base-parsbert-peymaner-uncased: PEYMA's raw tags
    "peyma": {"types": {"LOC": "LOC", "ORG": "ORG", "PER": "PER"}, "sep": "_", "case": "upper"},
    # HooshvareLab/bert-fa-base-uncased-ner-arman, hezarai/bert-fa-ner-arman: lower-case short names
    "arman": {"types": {"LOC": "loc", "ORG": "org", "PER": "pers"}, "sep": "-", "case": "lower"},
    # HooshvareLab/bert-base-parsbert-ner-uncased: full names
    "long": {"types": {"LOC": "location", "ORG": "organization", "PER": "person"}, "sep": "-", "case": "lower"},
}


def add_repo(hf_home: Path, repo_id: str, files: dict[str, bytes | str | Path]) -> Path:
    """Put ``files`` into ``hf_home``'s hub cache as the ``main`` revision of ``repo_id``; returns the snapshot."""
    org, name = repo_id.split("/")
    repo = hf_home / "hub" / f"models--{org}--{name}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for fname, content in files.items():
        target = snap / fname
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return snap


def small_vocab(words: list[str]) -> str:
    """A WordPiece vocab.txt (BERT special tokens, characters, words) where no ParsBERT vocab is at hand."""
    chars = sorted({c for w in words for c in w})
    entries = ["[PAD]", "[UNK]", "[CLS]", "[MASK]", "[SEP]", *chars, *("##" + c for c in chars), *sorted(set(words))]
    return "\n".join(dict.fromkeys(entries)) + "\n"


def base_checkpoint(vocab: Path | str, *, hidden: int = 32, layers: int = 1, seed: int = 0) -> dict[str, Any]:
    """Files of a 2020-era base repository: BertForMaskedLM config, pytorch_model.bin, vocab.txt."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    text = vocab.read_text(encoding="utf-8") if isinstance(vocab, Path) else vocab
    n_vocab = len(text.splitlines())
    config = BertConfig(vocab_size=n_vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=128,
                        architectures=["BertForMaskedLM"])
    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    return {"config.json": config.to_json_string(), "pytorch_model.bin": _torch_bytes(model.state_dict()),
            "vocab.txt": text}


def _torch_bytes(obj: Any) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def relabel(name: str, convention: str) -> str:
    """A canonical IOB2 label in one of :data:`CONVENTIONS`."""
    if name == "O":
        return "O"
    conv = CONVENTIONS[convention]
    return f"{name[0]}{conv['sep']}{conv['types'][name[2:]]}"


def ner_checkpoint(run_dir: Path, raw_labels: list[str], source_of: list[int | None], *,
                   weights: str = "bin") -> dict[str, Any]:
    """A published-style classifier made from a saved reference model (``run_dir``, labels :data:`CANONICAL`).

    Head row ``i`` of the new checkpoint is row ``source_of[i]`` of the reference (so the new model predicts
    the same thing under other names and another order); ``None`` makes a label the model never predicts
    (zero weights, bias -1e4), which is how BIOES ``E-``/``S-`` rows are added. No parsner.json and no
    normalizer.json, as on the Hub. ``weights``: ``"bin"`` (pytorch_model.bin) or ``"safetensors"``.
    """
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(run_dir / "model.safetensors"))
    w, b = state["classifier.weight"], state["classifier.bias"]
    new_w = torch.zeros(len(raw_labels), w.shape[1])
    new_b = torch.full((len(raw_labels),), -1e4)
    for i, src in enumerate(source_of):
        if src is not None:
            new_w[i], new_b[i] = w[src], b[src]
    state["classifier.weight"], state["classifier.bias"] = new_w, new_b
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    config["id2label"] = {str(i): name for i, name in enumerate(raw_labels)}
    config["label2id"] = {name: i for i, name in enumerate(raw_labels)}
    files: dict[str, Any] = {"config.json": json.dumps(config)}
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (run_dir / f).is_file():
            files[f] = run_dir / f
    if weights == "bin":
        files["pytorch_model.bin"] = _torch_bytes(state)
    else:
        tmp = run_dir.parent / f"{run_dir.name}-{len(raw_labels)}.safetensors"
        save_file(state, str(tmp))
        files["model.safetensors"] = tmp
    return files


def convention_checkpoint(run_dir: Path, convention: str, *, reverse: bool = True) -> dict[str, Any]:
    """The reference classifier renamed into ``convention`` (and, with ``reverse``, its label ids reversed)."""
    order = list(reversed(range(len(CANONICAL)))) if reverse else list(range(len(CANONICAL)))
    return ner_checkpoint(run_dir, [relabel(CANONICAL[i], convention) for i in order], list(order))


def bioes_checkpoint(run_dir: Path) -> dict[str, Any]:
    """A lower-case BIOES head (DadmaTools style): the reference's B/I rows plus never-predicted E/S rows."""
    raw: list[str] = ["O"]
    source: list[int | None] = [0]
    for t, short in (("LOC", "loc"), ("ORG", "org"), ("PER", "pers")):
        for prefix in ("S", "B", "I", "E"):
            raw.append(f"{prefix}-{short}")
            source.append(CANONICAL.index(f"{prefix}-{t}") if prefix in "BI" else None)
    return ner_checkpoint(run_dir, raw, source)


class Evil:
    """Unpickling this creates ``path``: what a malicious pytorch_model.bin could do."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.path, "w"))


def evil_checkpoint(files: dict[str, Any], marker: Path) -> dict[str, Any]:
    """``files`` with a pytorch_model.bin that would create ``marker`` if fully unpickled."""
    import io

    import torch

    state = torch.load(io.BytesIO(files["pytorch_model.bin"]), weights_only=True)
    state["evil"] = Evil(marker)
    return {**files, "pytorch_model.bin": _torch_bytes(state)}
