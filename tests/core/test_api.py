"""The Python API (``parsner.build_dataset``, ``train``, ``evaluate``, ``Tagger``, ...): light to import, every name
documented, the whole pipeline from Python without the command line, errors naming the parameters a caller passed,
and the module paths from before the stage layout gone."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import parsner
from parsner.paths import recipe

#: Small enough for one quick epoch on one thread; the scores only need to exist.
TINY = {"epochs": 1, "tiny_layers": 1, "tiny_hidden": 32, "tiny_heads": 2, "tiny_intermediate": 64,
        "tiny_vocab_size": 500, "num_threads": 1, "progress": False, "early_stopping_patience": 0}


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_parsner_loads_no_model_code():
    res = _fresh("import sys, parsner\n"
                 "heavy = [m for m in ('torch', 'transformers', 'datasets', 'hazm', 'ray') if m in sys.modules]\n"
                 "print(heavy)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


@pytest.mark.parametrize("name", parsner.__all__)
def test_every_public_name_resolves_and_is_documented(name):
    obj = getattr(parsner, name)
    if name == "__version__":
        assert obj == parsner.__version__ and obj.count(".") >= 1
        return
    doc = inspect.getdoc(obj)
    assert doc and len(doc) > 20, f"parsner.{name} needs a docstring"
    assert name in dir(parsner)


def test_the_public_names_are_the_stages_own():
    from parsner.data.api import build_dataset
    from parsner.errors import ConfigError
    from parsner.evaluation.api import evaluate
    from parsner.inference.tagger import Entity, Tagger
    from parsner.training.api import train

    assert (parsner.build_dataset, parsner.train, parsner.evaluate) == (build_dataset, train, evaluate)
    assert (parsner.Tagger, parsner.Entity, parsner.ConfigError) == (Tagger, Entity, ConfigError)
    assert set(Entity.__annotations__) == {"text", "label", "start", "end", "score"}
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        parsner.nothing_here  # noqa: B018


@pytest.mark.parametrize("old", ["parsner.tagger", "parsner.commands.predict", "parsner.normalize", "parsner.train"])
def test_the_module_paths_from_before_the_stage_layout_are_gone(old):
    res = _fresh(f"import {old}")
    assert res.returncode == 1 and "ModuleNotFoundError" in res.stderr, res.stderr


def test_build_train_evaluate_tag_from_python(tmp_path: Path):
    lines: list[str] = []
    built = parsner.build_dataset(corpus="sample", out=tmp_path / "data", log=lines.append)
    assert built.out == tmp_path / "data" and built.splits["train"] > 0 and lines
    run = parsner.train(recipe("sample"), overrides={**TINY, "data": built.out}, out=tmp_path / "run")
    assert run.out_dir == tmp_path / "run" and (run.out_dir / "config.json").is_file()
    result = parsner.evaluate(run.out_dir, built.out, split="test", bootstrap=0)
    assert result.out_dir is None and not (run.out_dir / "eval-test").exists()  # out=None writes nothing
    for mode in ("default", "strict"):
        assert 0.0 <= result.metrics[mode]["f1"] <= 1.0
    written = parsner.evaluate(run.out_dir, built.out, "test", tmp_path / "eval", bootstrap=0, plots=False)
    assert (written.out_dir / "metrics.json").is_file()
    text = "علی رضایی دیروز در دانشگاه تهران بود."
    entities: list[parsner.Entity] = parsner.Tagger.from_pretrained(run.out_dir, device="cpu")(text)
    for ent in entities:
        assert text[ent["start"]:ent["end"]] == ent["text"] and isinstance(ent["score"], float)

    # A config object works as well as a file; errors name what a Python caller passed.
    from parsner.training.api import resolve_config

    cfg = resolve_config(recipe("sample"), {**TINY, "data": str(built.out)}, out=tmp_path / "run")
    with pytest.raises(parsner.ConfigError, match=r"already exists; choose another `out` or pass overwrite=True"):
        parsner.train(cfg)
    with pytest.raises(parsner.ConfigError, match=r"`out`.*overwrite=True"):
        parsner.build_dataset(corpus="sample", out=built.out)
    with pytest.raises(parsner.ConfigError, match=r"`out`.*overwrite=True"):
        parsner.evaluate(run.out_dir, built.out, out=tmp_path / "eval")


def test_errors_name_the_parameters(tmp_path: Path):
    with pytest.raises(parsner.ConfigError, match=r"give either `inputs` \(annotated files\) or `corpus`, not both"):
        parsner.build_dataset(["a.conll"], corpus="sample", out=tmp_path / "d")
    with pytest.raises(parsner.ConfigError, match=r"`fold` only applies with `corpus`"):
        parsner.build_dataset("a.conll", fold=1, out=tmp_path / "d")
    with pytest.raises(parsner.ConfigError, match=r"^`split_ratios` 'a,b,c': expected three numbers"):
        parsner.build_dataset(corpus="sample", split_ratios="a,b,c", out=tmp_path / "d")
    with pytest.raises(parsner.ConfigError, match=r"^`overrides`: unknown config key\(s\): no_such_key"):
        parsner.train(recipe("sample"), overrides={"no_such_key": 1})
    with pytest.raises(parsner.ConfigError, match=r"^`overrides` 'epochs': expected key=value"):
        parsner.train(recipe("sample"), overrides=["epochs"])
    with pytest.raises(parsner.ConfigError, match=r"^`bootstrap` must be >= 0"):
        parsner.evaluate("model", "data", bootstrap=-1)


def test_the_commands_keep_their_flag_names(tmp_path: Path, capsys):
    from parsner.cli import main

    assert main(["data", "build", "--corpus", "sample", "--split-ratios", "a,b,c", "--out", str(tmp_path / "d")]) == 2
    assert "parsner: error: --split-ratios 'a,b,c': expected three numbers" in capsys.readouterr().err
    assert main(["eval", "--model", "m", "--data", "d", "--bootstrap", "-1"]) == 2
    assert "parsner: error: --bootstrap must be >= 0" in capsys.readouterr().err


def test_parameter_and_flag_spellings_are_inverses():
    from parsner.data.api import flag_names, parameter_names
    from parsner.errors import ConfigError

    said = "x already exists; choose another --out or pass --overwrite (not --outer, --split-ratios or `--out`)"
    with pytest.raises(ConfigError) as python, parameter_names(["out", "overwrite", "split"], ["overwrite"]):
        raise ConfigError(said)
    assert str(python.value) == ("x already exists; choose another `out` or pass overwrite=True "
                                 "(not --outer, --split-ratios or `--out`)")
    with pytest.raises(ConfigError) as cli, flag_names(["out", "overwrite", "split"], ["overwrite"]):
        raise python.value
    assert str(cli.value) == said
