"""The package's layout: old module paths still import, as the very same module objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import parsner
from parsner.paths import PACKAGE_DIR


@pytest.mark.parametrize("old", sorted(parsner.MOVED))
def test_old_module_path_is_the_new_module(old):
    new = f"parsner.{parsner.MOVED[old]}"
    assert importlib.import_module(f"parsner.{old}") is importlib.import_module(new)
    assert sys.modules[f"parsner.{old}"].__spec__.name == new, "the module keeps its own spec"
    assert not (PACKAGE_DIR / f"{old}.py").exists() and not (PACKAGE_DIR / old).exists(), "no file at the old path"


def test_old_paths_of_submodules_and_from_imports():
    from parsner.commands.predict import run
    from parsner.readers.conll import read_conll

    import parsner.cli.predict
    import parsner.data.normalize
    import parsner.data.readers.conll
    from parsner import normalize

    assert normalize is parsner.data.normalize
    assert run is parsner.cli.predict.run
    assert read_conll is parsner.data.readers.conll.read_conll
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("parsner.commands.no_such_command")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("parsner.no_such_module")


def test_monkeypatching_an_old_path_patches_the_code(monkeypatch):
    import parsner.inference.tagger

    monkeypatch.setattr("parsner.tagger.DEFAULT_MAX_BATCH_TOKENS", 7)
    assert parsner.inference.tagger.DEFAULT_MAX_BATCH_TOKENS == 7


def test_an_old_path_in_a_fresh_interpreter_loads_each_module_once():
    code = (
        "import sys, parsner.commands.eval, parsner.tagger, parsner.inference.tagger as t\n"
        "same = [n for n, m in sys.modules.items() if getattr(m, '__file__', None) == t.__file__]\n"
        "print(sorted(same), len({id(sys.modules[n]) for n in same}),\n"
        "      sys.modules['parsner.commands.eval'] is sys.modules['parsner.cli.eval'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['parsner.inference.tagger', 'parsner.tagger'] 1 True"
