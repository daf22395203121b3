"""The package as users install it: metadata ranges that admit their Pythons and their preinstalled torch, and a
wheel that carries what the CLI needs, run from outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from parsner.paths import REPO_ROOT

packaging = pytest.importorskip("packaging.requirements", reason="packaging (with build) is in the dev extra")
from packaging.requirements import Requirement  # noqa: E402
from packaging.specifiers import SpecifierSet  # noqa: E402

pytestmark = pytest.mark.skipif(not (REPO_ROOT / "pyproject.toml").is_file(), reason="needs the source checkout")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel as `pip install .` or `pip install git+URL` builds it (no build isolation: no network needed)."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
                           str(REPO_ROOT)], capture_output=True, text=True, cwd=out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (found,) = out.glob("parsner-*.whl")
    return found


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode("utf-8"))


def test_metadata_admits_the_pythons_and_torches_users_have(wheel):
    meta = _metadata(wheel)
    python = SpecifierSet(meta["Requires-Python"])
    for version in ("3.11.0", "3.12.3", "3.13.5", "3.14.0"):
        assert version in python, f"Requires-Python {python} refuses {version}"
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    core = {r.name.lower(): r for r in reqs if r.marker is None}
    for name in ("torch", "numpy", "transformers", "datasets", "seqeval"):
        assert name in core, f"{name} is not a core dependency"
        assert not any(s.operator in ("==", "===") for s in core[name].specifier), f"{name} is pinned exactly"
    for torch_version in ("2.6.0", "2.11.0", "2.13.0"):  # Debian 13, Colab, this machine
        assert core["torch"].specifier.contains(torch_version), torch_version
    for numpy_version in ("1.24.3", "2.2.4"):
        assert core["numpy"].specifier.contains(numpy_version), numpy_version
    ray = [r for r in reqs if r.name == "ray"]
    assert ray and all(r.marker is not None and "extra" in str(r.marker) for r in ray), "ray must be optional"
    assert ray[0].specifier.contains("2.51.0") and not ray[0].specifier.contains("2.50.0"), ray[0].specifier
    hazm = [r for r in reqs if r.name == "hazm"]
    assert hazm and all(r.marker is not None and "extra" in str(r.marker) for r in hazm), "hazm must be optional"
    for python_version, expected in (("3.11", "0.10.0"), ("3.13", "0.12.1"), ("3.14", None)):
        env = {"python_version": python_version, "extra": "hazm"}
        picked = [r for r in hazm if r.marker.evaluate(env)]
        if expected is None:
            assert not picked, f"no hazm release installs on {python_version}"
        else:
            assert len(picked) == 1 and picked[0].specifier.contains(expected), (python_version, picked)


def test_the_wheel_carries_the_sample_and_recipes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in ("data/sample/sample.jsonl", "data/sample/splits.json", "training/sample.yaml",
                "training/peyma.yaml", "eval/baselines.yaml"):
        assert f"parsner/_resources/{rel}" in names, rel
        packed = zipfile.ZipFile(wheel).read(f"parsner/_resources/{rel}")
        assert packed == (REPO_ROOT / rel).read_bytes(), f"{rel} differs from the repository's copy"


def test_the_wheel_carries_every_module_and_subpackage_and_no_other(wheel):
    """Exactly the checkout's modules: every stage subpackage, py.typed, and no stale copy of a moved module."""
    source = REPO_ROOT / "src"
    expected = {p.relative_to(source).as_posix() for p in (source / "parsner").rglob("*.py")} | {"parsner/py.typed"}
    packed = {n for n in zipfile.ZipFile(wheel).namelist()
              if n.startswith("parsner/") and not n.startswith("parsner/_resources/")}
    assert packed == expected
    for sub in ("data", "data/readers", "training", "evaluation", "inference", "serving", "cli"):
        assert f"parsner/{sub}/__init__.py" in packed, sub


@pytest.mark.slow
def test_installed_wheel_runs_quickstart_predict_and_env_outside_the_checkout(wheel, tmp_path):
    """Installed with --no-deps beside the dev environment's dependencies, run from a folder outside the checkout;
    the wheel's parsner is the one imported (asserted), so the checkout's files cannot stand in for missing ones."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "HF_HUB_OFFLINE": "1", "PARSNER_SHARED": str(tmp_path / "none")}

    def parsner(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "parsner", *args], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import parsner; print(parsner.__file__)"], capture_output=True,
                           text=True, cwd=cwd, env=env, check=True).stdout.strip()
    assert Path(where).is_relative_to(target), f"imported {where}, not the installed wheel"

    qs = parsner("quickstart", "--epochs", "1", "--workdir", "qs")
    assert qs.returncode == 0, qs.stderr[-3000:]
    assert (cwd / "qs" / "eval" / "report.md").is_file()
    assert "f1" in json.loads((cwd / "qs" / "eval" / "metrics.json").read_text(encoding="utf-8"))["default"]

    text = "وزیر امور خارجه در تهران گفت."
    pred = parsner("predict", "--model", "qs/model", "--format", "jsonl", text)
    assert pred.returncode == 0, pred.stderr[-2000:]
    record = json.loads(pred.stdout.splitlines()[0])
    assert record["text"] == text
    for ent in record["entities"]:
        assert text[ent["start"]:ent["end"]] == ent["text"]

    out = parsner("env", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout)
    assert info["parsner"] and info["packages"]["torch"] and info["packages"]["transformers"]

    recipe = parsner("train", "--config", "training/sample.yaml", "--data", "qs/data", "--out", "run2",
                     "--epochs", "0.01")
    assert recipe.returncode == 0, recipe.stderr[-2000:]
    assert "recipe shipped with ParsNER" in recipe.stderr
