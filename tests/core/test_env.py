"""``parsner env``: what a bug report needs, as text and as JSON."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

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


def test_machine_names_vendor_family_and_model(monkeypatch):
    """A VM's model name is often just "AMD EPYC": family and model tell Zen 4 (25) from Zen 5 (26)."""
    from parsner import envinfo

    fields = {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "17", "model name": "AMD EPYC",
              "flags": "fpu avx2 fma avx512f avx512bw avx512_vnni avx512_bf16"}
    monkeypatch.setattr(envinfo, "cpu_fields", lambda: fields)
    m = envinfo.machine()
    assert (m["vendor"], m["cpu_family"], m["cpu_model"]) == ("AuthenticAMD", 25, 17)
    assert m["simd"] == ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"]
    assert envinfo.cpu_name(m) == "AMD EPYC (AuthenticAMD family 25 model 17)"


def test_bench_record_and_its_line(monkeypatch):
    from parsner import envinfo

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    info = envinfo.bench_record(torch=2, onnxruntime=1, unused=None)
    assert info["bench_threads"] == {"torch": 2, "onnxruntime": 1}
    assert "paths" not in info and info["machine"]["cpu"]
    line = envinfo.bench_summary(info)
    for part in (info["machine"]["cpu"], "logical cores", "SIMD", f"torch {info['torch']['version']}",
                 "onnxruntime", "threads: torch 2, onnxruntime 1; OMP_NUM_THREADS=2", "load average"):
        assert part in line, part
    assert "\n" not in line


@pytest.mark.parametrize("script", ["bench_predict.py", "bench_build.py", "bench_train.py", "bench_serve.py",
                                    "bench_compile.py"])
def test_every_benchmark_records_its_machine(script):
    """Printed and in its JSON: a figure without its machine cannot be compared with another machine's."""
    from parsner.paths import REPO_ROOT

    text = (REPO_ROOT / "eval" / script).read_text(encoding="utf-8")
    assert "bench_record(" in text and "bench_summary(" in text and '"machine"' in text
