"""``parsner env``: what a bug report needs, as text and as JSON."""

from __future__ import annotations

import json
from importlib import metadata

from parsner.cli import main


def test_env_json_names_the_versions_machine_and_paths(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PARSNER_SHARED", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert main(["env", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["packages"]["transformers"] == metadata.version("transformers")
    assert info["packages"]["numpy"] == metadata.version("numpy")
    assert info["torch"]["version"].startswith(metadata.version("torch").split("+")[0])
    assert info["torch"]["cuda_available"] in (True, False)
    assert info["machine"]["logical_cores"] >= 1 and info["machine"]["cpu"]
    assert info["threads_env"]["OMP_NUM_THREADS"] == "1"
    assert info["paths"]["parsner_shared"] == str(tmp_path.resolve())
    assert info["paths"]["parsner_shared_from"] == "$PARSNER_SHARED" and info["paths"]["parsner_shared_exists"]


def test_env_text_is_one_line_per_fact(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(line.startswith("- ") for line in lines)
    for name in ("parsner", "Python", "torch", "transformers", "datasets", "tokenizers", "numpy", "onnxruntime",
                 "fastapi", "hazm", "CPU", "HF cache", "PARSNER_SHARED", "thread settings"):
        assert any(line.startswith(f"- {name}") for line in lines), name
