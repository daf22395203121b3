"""Puts the files the CLI needs from outside the package into the wheel, as ``parsner/_resources/<same path>``.

They stay where a reader of the repository expects them (``data/sample/``, ``training/*.yaml``,
``eval/baselines.yaml``), one copy each; :func:`parsner.paths.resource` finds the wheel's copy, or the checkout's in
a source or editable install. Everything else about the package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Keep in step with MANIFEST.in (the sdist must carry them so that a wheel built from it has them too).
SHIPPED_GLOBS = ("data/sample/sample.jsonl", "data/sample/splits.json", "data/README.md",
                 "training/*.yaml", "eval/baselines.yaml")


def shipped_files() -> list[str]:
    found = sorted({p.relative_to(HERE).as_posix() for pattern in SHIPPED_GLOBS for p in HERE.glob(pattern)})
    if not any(f.startswith("training/") for f in found) or "data/sample/sample.jsonl" not in found:
        raise SystemExit(f"setup.py: the shipped resources are missing under {HERE}; is this a complete source tree?")
    return found


class BuildPyWithResources(build_py):
    def run(self) -> None:
        if not getattr(self, "editable_mode", False):
            # build/lib is reused from build to build and never pruned: a module that moved or was deleted would
            # still ship from a stale copy there. Start the package's tree afresh.
            shutil.rmtree(Path(self.build_lib) / "parsner", ignore_errors=True)
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's own files
        for rel in shipped_files():
            target = Path(self.build_lib) / "parsner" / "_resources" / rel
            self.mkpath(str(target.parent))
            self.copy_file(str(HERE / rel), str(target))


setup(cmdclass={"build_py": BuildPyWithResources})
