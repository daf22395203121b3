"""Safe outputs: a crash never leaves something that looks complete, and parsner replaces only what it made.

The output rule, shared by every command:

* every folder parsner creates (dataset, run, run work folder, evaluation) holds a marker file
  :data:`MARKER` naming its kind; every file ``parsner predict --output`` writes is recorded, with its
  sha256, in the folder's :data:`FILE_MANIFEST`;
* an existing output is replaced only with ``--overwrite``, and only if parsner made it (as the same
  kind: an evaluation never replaces a trained run) and, for a file, nobody changed it since;
* an output may never be an input of the same command, nor ``.``, ``..`` or any folder holding an input
  or the current directory;
* all of this is checked before any work starts (:func:`check_output_dir`, :func:`check_output_file`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from parsner.errors import ConfigError

#: Marker file written into every folder parsner creates: ``{"kind": ..., "parsner_version": ..., ...}``.
MARKER = ".parsner-output.json"
#: Per-folder record of the files ``parsner predict --output`` wrote there (name -> sha256).
FILE_MANIFEST = ".parsner-outputs.json"

KIND_DESCRIPTION = {
    "dataset": "a dataset built by parsner",
    "run": "a run trained by parsner",
    "run-work": "an interrupted parsner training run",
    "eval": "an evaluation written by parsner",
    "benchmark": "a benchmark folder written by parsner",
    "quickstart": "a parsner quickstart folder",
}

# Folders written before the marker existed are recognised by the files only parsner writes together.
_LEGACY = {
    "dataset": ("build.json", "dataset_dict.json", "stats.json"),
    "run": ("parsner.json", "config.json", "run_config.yaml"),
    "eval": ("metrics.json", "report.md", "predictions.conll"),
    "run-work": ("run_config.yaml",),
}


def _version() -> str:
    from parsner._version import __version__

    return __version__


def write_marker(folder: str | Path, kind: str) -> None:
    """Mark ``folder`` as made by parsner (``kind``: one of :data:`KIND_DESCRIPTION`)."""
    doc = {"kind": kind, "parsner_version": _version(), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "pid": os.getpid()}
    (Path(folder) / MARKER).write_text(json.dumps(doc) + "\n", encoding="utf-8")


def output_kind(folder: str | Path) -> str | None:
    """The kind of parsner output ``folder`` is, or None when parsner did not make it."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    try:
        doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if isinstance(doc, dict) and isinstance(doc.get("kind"), str):
            return doc["kind"]
    except (OSError, ValueError):
        pass
    for kind, files in _LEGACY.items():
        if all((folder / f).exists() for f in files):
            return kind
    return None


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_not_input(target: Path, inputs: Iterable[str | Path | None], option: str) -> None:
    tr = target.resolve()
    cwd = Path.cwd().resolve()
    if _is_within(cwd, tr):
        raise ConfigError(f"{option} {target} is the current folder or holds it; choose a new folder for the output")
    for p in inputs:
        if p is None:
            continue
        pr = Path(p).resolve()
        if _is_within(pr, tr):
            what = "is" if pr == tr else "holds"
            raise ConfigError(f"{option} {target} {what} the input {p}; the output must be somewhere else")


def check_output_dir(
    target: str | Path,
    *,
    kind: str,
    overwrite: bool,
    inputs: Iterable[str | Path | None] = (),
    option: str = "--out",
    also: Iterable[str] = (),
) -> None:
    """Refuse, before any work, an output folder that this command may not (re)place.

    ``also``: further kinds this command may replace (e.g. an empty folder is always replaceable).
    """
    target = Path(target)
    if str(target) in ("", ".", "..") or target.name in ("", ".", ".."):
        raise ConfigError(f"{option} {str(target) or '.'!r}: give a new folder's name, not '.' or '..'")
    _check_not_input(target, inputs, option)
    if not target.exists() and not target.is_symlink():
        for parent in target.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ConfigError(f"{option} {target}: {parent} is a file, not a folder")
                break
        return
    if not target.is_dir() or target.is_symlink():
        raise ConfigError(f"{option} {target} exists and is not a folder; choose another {option}")
    if not overwrite:
        raise ConfigError(f"{target} already exists; choose another {option} or pass --overwrite")
    found = output_kind(target)
    if found is None and not any(target.iterdir()):
        return  # an empty folder: nothing to lose
    if found != kind and found not in set(also):
        desc = KIND_DESCRIPTION.get(kind, f"a parsner {kind} output")
        held = f" (it holds {KIND_DESCRIPTION.get(found, found)})" if found else ""
        raise ConfigError(
            f"{target} exists and is not {desc}{held}; --overwrite only replaces such folders "
            f"(remove it yourself or choose another {option})"
        )


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, overwrite: bool = False, kind: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it is renamed to ``target``.

    On any exception the temporary directory is removed and ``target`` is left as it was.
    ``overwrite=False`` refuses an existing ``target`` up front. With ``kind`` the folder gets the
    parsner marker, and an existing ``target`` is replaced only if it is a parsner output of that kind.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists; choose another output or pass --overwrite")
    if kind is not None:
        check_output_dir(target, kind=kind, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if kind is not None:
            write_marker(tmp, kind)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if target.exists() and overwrite:
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            _rename_new(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_new(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to a ``target`` that must not exist, also if another process created it meanwhile."""
    if target.exists() or target.is_symlink():
        raise ConfigError(f"{target} was created by another process while this one was working; nothing replaced")
    try:
        os.rename(tmp, target)  # fails on a non-empty folder that appeared since the check
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
            raise ConfigError(
                f"{target} was created by another process while this one was working; nothing replaced"
            ) from None
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file through a temporary name + rename, so readers never see half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ----------------------------------------------------------------------------------------- single files


def file_sha256(path: Path) -> str:
    """The sha256 of a file (inputs are recorded by it; outputs are recognised by it), read without loading it."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _manifest(folder: Path) -> dict[str, str]:
    try:
        doc = json.loads((folder / FILE_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, str)} if isinstance(files, dict) else {}


def check_output_file(
    target: str | Path, *, overwrite: bool, inputs: Iterable[str | Path | None] = (), option: str = "--output"
) -> None:
    """Refuse, before any work, an output file this command may not (re)place (see the module rule)."""
    target = Path(target)
    if target.name in ("", ".", ".."):
        raise ConfigError(f"{option} {str(target)!r}: give a file name")
    tr = target.resolve()
    for p in inputs:
        if p is None:
            continue
        pr = Path(p).resolve()
        if pr == tr:
            raise ConfigError(f"{option} {target} is the input {p}; the output must be somewhere else")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {target}: {parent} is a file, not a folder")
            break
    if target.is_dir():
        raise ConfigError(f"{option} {target} is a folder; give a file name")
    if not target.exists():
        return
    if not overwrite:
        raise ConfigError(f"{target} already exists; choose another {option} or pass --overwrite")
    recorded = _manifest(target.parent).get(target.name)
    if recorded is None or not target.is_file() or file_sha256(target) != recorded:
        why = "was changed since parsner wrote it" if recorded else "was not written by parsner"
        raise ConfigError(
            f"{target} {why}; --overwrite only replaces files parsner wrote (remove it yourself or choose "
            f"another {option})"
        )


def publish_file(tmp: str | Path, path: str | Path, *, overwrite: bool) -> None:
    """Move a finished temporary file to ``path``; without ``overwrite`` a file that appeared meanwhile stays."""
    tmp, path = Path(tmp), Path(path)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and fails if path exists (unlike rename)
    except FileExistsError:
        raise ConfigError(f"{path} was created by another process while this one was working; nothing replaced") \
            from None
    except OSError:
        if path.exists():
            raise
        os.replace(tmp, path)  # a filesystem without hard links
        return
    tmp.unlink()


def record_output_file(path: str | Path) -> None:
    """Add ``path`` (just written by parsner) to its folder's manifest, so --overwrite may replace it."""
    path = Path(path)
    files = _manifest(path.parent)
    files[path.name] = file_sha256(path)
    atomic_write_text(path.parent / FILE_MANIFEST, json.dumps({"files": files}, indent=1) + "\n")
