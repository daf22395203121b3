"""The same training command under DDP: 2 CPU processes (gloo) via torchrun, on a tiny stand-in."""

from __future__ import annotations

import json
import socket

import pytest

from train_helpers import run_cli, small_dataset, tiny_config

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rendezvous_env() -> dict[str, str]:
    """``USE_LIBUV=0`` where torch was built without libuv (Debian's torch): torchrun's store asks for libuv by
    default and fails at start otherwise. That is torch's documented switch; the training itself is unchanged."""
    from torch.distributed import TCPStore

    try:
        TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, use_libuv=True)
    except RuntimeError as exc:
        if "libuv" in str(exc):
            return {"USE_LIBUV": "0"}
        raise
    return {}


def test_torchrun_two_cpu_processes(tmp_path):
    data = small_dataset(tmp_path / "data")
    config = tiny_config(tmp_path / "tiny.yaml", data)
    out = tmp_path / "ddp"
    res = run_cli(
        ["--nproc_per_node=2", f"--master_port={_free_port()}", "-m", "parsner", "train",
         "--config", str(config), "--out", str(out)],
        module=("-m", "torch.distributed.run"),
        env_extra=_rendezvous_env(),
        timeout=400,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.count("validation f1_strict=") == 1  # rank 0 reports once
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # 64 sentences, batch 8 per process, 2 processes: 4 steps per epoch, 4 epochs
    assert doc["global_step"] == 16
    # The distributed evaluation gathered predictions in window order: re-scoring the saved model in
    # one process on the same validation sentences gives the same F1.
    from parsner.dataset import load_dataset_dir
    from parsner.metrics import score
    from parsner.tagger import Tagger

    valid = load_dataset_dir(data)["validation"]
    names = valid.features["ner_tags"].feature.names
    gold = [[names[i] for i in s] for s in valid["ner_tags"]]
    tagger = Tagger.from_pretrained(str(out), device="cpu")
    pred = tagger.predict_words(valid["tokens"])
    assert score(gold, pred)["strict"]["f1"] == pytest.approx(doc["metrics"]["f1_strict"])
    assert not (tmp_path / "ddp.incomplete").exists()
