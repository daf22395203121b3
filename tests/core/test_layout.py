"""The package's layout: subpackages by pipeline stage whose imports follow the stages and make no circle (the
import-linter contracts in pyproject.toml), a small top, every module named in docs/ARCHITECTURE.md, and nothing
outside the command line importing it.

The last rule reads the import statements themselves (at module level, inside functions and under
``TYPE_CHECKING``), not what happens to be imported at run time. ``lint-imports`` prints a broken contract's
import chain; ``lint-imports`` with ``--verbose`` shows the whole check.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import parsner
from parsner.paths import PACKAGE_DIR, REPO_ROOT

#: Most modules allowed directly in src/parsner (the rest live in the stage subpackages).
MAX_TOP_MODULES = 10


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """``{dotted module name: file}`` for every .py file of the package (a package is its ``__init__.py``)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from . import x / from ..y import z
            anchor = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{base}" if base else anchor
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return []
    out = []
    for name in names:
        while name and name not in modules:  # `import parsner.data.align` names parsner.data.align
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """``{module: the parsner modules it imports}``, from every import statement anywhere in its source."""
    modules = module_files(package_dir)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        deps = {dep for node in ast.walk(tree) for dep in _imported(node, module, is_package, modules)}
        graph[module] = deps - {module}
    return graph


def stage(module: str) -> str:
    """``data``, ``training``, ... for a module of a stage subpackage; ``core`` for the modules at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE_DIR / parts[1]).is_dir() else "core"


# ------------------------------------------------------------------------------------------------ the graph


def test_the_import_contracts_hold():
    """The stage rules, the serving rule and no circles: the contracts in pyproject.toml, checked by import-linter
    (what ``make lint`` runs) from every import statement, TYPE_CHECKING ones included. In its own process: it
    configures logging for itself."""
    pytest.importorskip("importlinter", reason="import-linter is in the dev extra")
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filenames=({str(REPO_ROOT / 'pyproject.toml')!r},), no_cache=True))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_the_contracts_name_every_stage():
    """A new stage subpackage must get a place in the layers contract (else nothing constrains it)."""
    import tomllib

    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["id"] == "stages")["layers"]
    named = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    stages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()}
    tops = {p.stem for p in PACKAGE_DIR.glob("*.py")} - {"__init__", "__main__"}
    assert stages | tops == named


def test_nothing_imports_the_package_face_or_the_command_line():
    """The public face lazily imports every stage but never the command line, and no module imports the face
    (import from the module itself): the commands use the Python API, not the other way round. The entry point,
    ``python -m parsner``, is the one module outside cli/ that may import cli. (import-linter's contracts cannot
    single out a package's own ``__init__``, so this stays a check of the import statements.)"""
    wrong = []
    for module, deps in import_graph().items():
        if "parsner" in deps and module != "parsner.__main__":
            wrong.append(f"{module} imports the package's __init__")
        if stage(module) != "cli" and module != "parsner.__main__" and any(stage(d) == "cli" for d in deps):
            wrong.append(f"{module} imports the command line")
    assert wrong == []


def test_a_small_top():
    top = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_architecture_names_every_module_and_subpackage():
    doc = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for path in module_files().values():
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        package = rel.removesuffix("__init__.py")
        if rel.endswith("__init__.py") and package:
            if f"`{package}`" not in doc and f"`{rel}`" not in doc:  # a subpackage: `data/` (or its __init__.py)
                missing.append(package)
        elif f"`{rel}`" not in doc:
            missing.append(rel)
    assert missing == [], "name these in docs/ARCHITECTURE.md"


@pytest.mark.parametrize("module", ["parsner", "parsner.cli"])
def test_python_m_runs_the_command_line(module):
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"parsner {parsner.__version__}"
