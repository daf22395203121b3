"""The config reference the docs show is made from the field declarations that check configs and make flags."""

from __future__ import annotations

import dataclasses

import pytest

from parsner.training.config import RunConfig, config_reference


def _row(table: str, key: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| `{key}` |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_every_key_has_one_row_with_its_help():
    table = config_reference(RunConfig)
    for f in dataclasses.fields(RunConfig):
        row = _row(table, f.name)
        assert f.metadata["help"].replace("|", "\\|") in row[4]
    assert len(table.splitlines()) == 2 + len(dataclasses.fields(RunConfig))


def test_choices_bounds_defaults_and_flags_come_from_the_declarations():
    table = config_reference(RunConfig)
    assert _row(table, "lr_scheduler")[1].startswith("`linear` \\| `cosine`")
    assert _row(table, "crf_window")[3] == "≥ 0, ≤ 5"
    assert _row(table, "cluster_sizes")[1:3] == ["list[int]", "`[32, 128, 512]`"]
    assert "(flag `--data`)" in _row(table, "data")[4]
    assert "(may change on --resume)" in _row(table, "num_threads")[4]


@pytest.mark.parametrize("module, cls", [("parsner.training.pretrain", "PretrainConfig"),
                                         ("parsner.training.distill", "DistillConfig")])
def test_the_other_jobs_configs_render_too(module, cls):
    import importlib

    config = getattr(importlib.import_module(module), cls)
    table = config_reference(config)
    assert all(f"| `{f.name}` |" in table for f in dataclasses.fields(config))
