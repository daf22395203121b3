"""MkDocs hooks of the documentation site (``hooks:`` in mkdocs.yml): used by ``make docs``, not part of the package.

- **Config reference.** A line ``<!-- config-reference: MODULE.CLASS -->`` in a page becomes the Markdown table
  that :func:`parsner.training.config.config_reference` renders from that config class's field declarations, the
  ones that check a config and make the command's flags: the page cannot drift from the code.
- **Repository documents.** The files in :data:`REPO_FILES` live outside ``docs/`` (``eval/RESULTS.md``,
  ``data/README.md``, the pictures in ``eval/``); they join the site at their repository paths, and a page's link
  to one, written as GitHub resolves it from ``docs/`` (``../eval/RESULTS.md``), is pointed at the site's copy. A
  link to any other file outside ``docs/`` stays as written, and ``mkdocs build --strict`` fails on it.
- **Docstrings.** The package's docstrings cite objects with Sphinx roles (``:class:`~parsner.x.Y```), which the
  Google-style parser of the API reference does not know (a ``Returns:`` item starting with one is misread as a
  name and a type). :class:`SphinxRoles`, a Griffe extension (mkdocs.yml, mkdocstrings' ``extensions``), turns
  each into plain code (``Y``) before the docstring is parsed.
"""

from __future__ import annotations

import importlib
import posixpath
import re
from pathlib import Path

import griffe
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

#: Files outside docs/ that the site carries, as paths from the repository root.
REPO_FILES = (
    "eval/RESULTS.md",
    "eval/README.md",
    "eval/baselines.yaml",
    "data/README.md",
    "eval/serve-page.png",
    "eval/predict_html.png",
    "eval/active-learning-peyma/report.md",
    "eval/active-learning-peyma/learning_curves.png",
    "eval/calibration-peyma/peyma-cpu-raw-text-reliability.png",
    "eval/calibration-peyma/peyma-cpu-threshold.png",
    "eval/calibration-peyma/peyma-scratch-raw-text-reliability.png",
    "eval/calibration-peyma/peyma-scratch-threshold.png",
)

CONFIG_MARKER = re.compile(r"^<!-- config-reference: ([\w.]+) -->$", re.MULTILINE)
LINK = re.compile(r"(\]\()([^)\s]+)")
ROLE = re.compile(r":(?:class|func|meth|mod|attr|exc|data|obj):`(~?)([\w.]+)`")


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for rel in REPO_FILES:
        if not (root / rel).is_file():
            raise PluginError(f"docs/hooks.py: {rel} is listed in REPO_FILES but not in the repository")
        files.append(File(rel, src_dir=str(root), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def config_table(dotted: str) -> str:
    """The config reference of the class at ``dotted`` (``parsner.training.config.RunConfig``)."""
    from parsner.training.config import config_reference

    module, _, name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"docs/hooks.py: config-reference marker names {dotted}, which cannot be imported: "
                          f"{exc}") from exc
    return config_reference(cls)


def repo_links(markdown: str, src_uri: str) -> str:
    """Links from a page to a file of :data:`REPO_FILES` point at the site's copy of it."""
    here = posixpath.dirname(src_uri)

    def fix(match: re.Match) -> str:
        url = match.group(2)
        path, sep, anchor = url.partition("#")
        if not path or "://" in path or path.startswith("/"):
            return match.group(0)
        target = posixpath.normpath(posixpath.join(here, path))
        if target.startswith("../") and target[3:] in REPO_FILES:
            return match.group(1) + posixpath.relpath(target[3:], here or ".") + sep + anchor
        return match.group(0)

    return LINK.sub(fix, markdown)


def on_page_markdown(markdown, page, config, files):
    markdown = CONFIG_MARKER.sub(lambda m: config_table(m.group(1)), markdown)
    return repo_links(markdown, page.file.src_uri)



def plain_roles(text: str) -> str:
    """``:class:`~a.b.C``` -> ```C```, ``:func:`a.b``` -> ```a.b```, as Sphinx would show them."""
    return ROLE.sub(lambda m: f"`{m.group(2).rpartition('.')[2] if m.group(1) else m.group(2)}`", text)


class SphinxRoles(griffe.Extension):
    """Sphinx roles in docstrings become plain code before the docstrings are parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)
