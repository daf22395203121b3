"""The package's layout: subpackages by pipeline stage, no import circle, imports that follow the stages, a small
top, every module named in docs/ARCHITECTURE.md, and nothing outside the command line importing it.

The import graph is read from the source (every ``import``/``from ... import`` naming a parsner module: at module
level, inside functions, and under ``TYPE_CHECKING``), not from what happens to be imported at run time. Run this
file (``python tests/test_layout.py``) to print the graph's levels.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import parsner
from parsner.paths import PACKAGE_DIR, REPO_ROOT

#: Most modules allowed directly in src/parsner (the rest live in the stage subpackages).
MAX_TOP_MODULES = 10
#: What each stage may import ("core": the modules at the top). The data flows the same way: data -> inference,
#: training -> evaluation -> serving and cli on top.
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "inference": {"core", "data", "inference"},
    "training": {"core", "data", "inference", "evaluation", "training"},
    "evaluation": {"core", "data", "inference", "evaluation"},
    "serving": {"core", "data", "inference", "serving"},
    "cli": {"core", "data", "inference", "training", "evaluation", "serving", "cli"},
}
#: The one module allowed above its stage: benchmarks runs build -> train -> eval, so it imports training.
EXCEPTIONS = {("parsner.evaluation.benchmarks", "training")}


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


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def levels(graph: dict[str, set[str]]) -> dict[str, int]:
    """Level of each module in an acyclic graph: 0 imports no parsner module, else 1 + its deepest import."""
    level: dict[str, int] = {}

    def visit(module: str) -> int:
        if module not in level:
            level[module] = 1 + max((visit(dep) for dep in graph[module]), default=-1)
        return level[module]

    for module in sorted(graph):
        visit(module)
    return level


def stage(module: str) -> str:
    """``data``, ``training``, ... for a module of a stage subpackage; ``core`` for the modules at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE_DIR / parts[1]).is_dir() else "core"


# ------------------------------------------------------------------------------------------------ the graph


def test_no_import_circle():
    graph = import_graph()
    assert len(graph) > 40, "the graph reader found too few modules"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_follow_the_stages():
    wrong = []
    for module, deps in import_graph().items():
        if module in ("parsner", "parsner.__main__"):
            continue  # the public face and the entry point sit on top of everything
        for dep in deps:
            if dep == "parsner":
                wrong.append(f"{module} imports the package's __init__ (import from the module itself)")
            elif stage(dep) not in ALLOWED[stage(module)] and (module, stage(dep)) not in EXCEPTIONS:
                wrong.append(f"{module} ({stage(module)}) imports {dep} ({stage(dep)})")
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


def test_only_the_command_line_imports_it():
    """The public face lazily imports every stage but never the command line: the commands use the Python API,
    not the other way round (the entry point, ``python -m parsner``, is the one module outside cli/ that may)."""
    outside = sorted(m for m, deps in import_graph().items() if stage(m) != "cli" and m != "parsner.__main__"
                     and any(stage(dep) == "cli" for dep in deps))
    assert outside == []


@pytest.mark.parametrize("module", ["parsner", "parsner.cli"])
def test_python_m_runs_the_command_line(module):
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"parsner {parsner.__version__}"


if __name__ == "__main__":  # print the graph's levels, one line per level
    graph = import_graph()
    found = cycles(graph)
    if found:
        sys.exit(f"import circles: {found}")
    by_level: dict[int, list[str]] = {}
    for module, level in levels(graph).items():
        by_level.setdefault(level, []).append(module.removeprefix("parsner.") or "parsner")
    for level in sorted(by_level):
        print(level, " ".join(sorted(by_level[level])))
    print(f"{len(graph)} modules, {len(by_level)} levels, {sum(map(len, graph.values()))} imports, 0 circles")
