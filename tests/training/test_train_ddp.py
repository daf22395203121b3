"""The same training command under DDP: 2 CPU processes (gloo) via torchrun, on a tiny stand-in."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from helpers.train import assert_no_traceback, run_cli, small_dataset, tiny_config

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_libuv() -> bool:
    """torchrun's stores ask for libuv, and a torch built without it (Debian's) cannot start torchrun at all
    (``USE_LIBUV=0`` reaches only the ``env://`` rendezvous); there the workers are started as torchrun would."""
    from torch.distributed import TCPStore

    try:
        TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, use_libuv=True)
    except RuntimeError as exc:
        if "libuv" in str(exc):
            return False
        raise
    return True


def _two_workers(args: list[str]) -> tuple[int, str, str]:
    """Both ranks of ``parsner ARGS`` with torchrun's environment variables (env:// rendezvous, no libuv)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "USE_LIBUV": "0",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, "-m", "parsner", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)})
             for r in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for _, err in outs:
        assert_no_traceback(err, args)
    code = max(p.returncode for p in procs)
    return code, "".join(out for out, _ in outs), "".join(err for _, err in outs)


def test_torchrun_two_cpu_processes(tmp_path):
    data = small_dataset(tmp_path / "data")
    config = tiny_config(tmp_path / "tiny.yaml", data)
    out = tmp_path / "ddp"
    train = ["train", "--config", str(config), "--out", str(out)]
    if _has_libuv() and not os.environ.get("PARSNER_TEST_NO_TORCHRUN"):  # the variable tries the other path here
        res = run_cli(["--nproc_per_node=2", f"--master_port={_free_port()}", "-m", "parsner", *train],
                      module=("-m", "torch.distributed.run"), timeout=400)
        code, stdout, stderr = res.returncode, res.stdout, res.stderr
    else:
        code, stdout, stderr = _two_workers(train)
    assert code == 0, stderr[-4000:]
    assert stdout.count("validation f1_strict=") == 1  # rank 0 reports once
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # 64 sentences, batch 8 per process, 2 processes: 4 steps per epoch, 4 epochs
    assert doc["global_step"] == 16
    # The distributed evaluation gathered predictions in window order: re-scoring the saved model in
    # one process on the same validation sentences gives the same F1.
    from parsner.data.dataset import load_dataset_dir
    from parsner.evaluation.metrics import score
    from parsner.inference.tagger import Tagger

    valid = load_dataset_dir(data)["validation"]
    names = valid.features["ner_tags"].feature.names
    gold = [[names[i] for i in s] for s in valid["ner_tags"]]
    tagger = Tagger.from_pretrained(str(out), device="cpu")
    pred = tagger.predict_words(valid["tokens"])
    assert score(gold, pred)["strict"]["f1"] == pytest.approx(doc["metrics"]["f1_strict"])
    assert not (tmp_path / "ddp.incomplete").exists()
