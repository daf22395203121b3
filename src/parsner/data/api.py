"""The data stage's public function, :func:`build_dataset` (``parsner.build_dataset``), and how the Python API's
errors name what its caller passed.

The modules below the API word their errors for the command line (``choose another --out or pass --overwrite``).
A Python caller passed ``out=`` and ``overwrite=True``, so each public function runs them inside
:func:`parameter_names`, which words a :class:`~parsner.errors.ConfigError` with the parameter names instead; the
commands run the public functions inside :func:`flag_names`, its exact inverse, so that their messages name their
flags as before. The rule between the two spellings is the commands' own: parameter ``split_ratios`` is flag
``--split-ratios``, and a switch (``overwrite``) is ``overwrite=True`` in Python.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsner.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from parsner.data.dataset import BuildReport

#: ``parsner.build_dataset``'s parameters that ``parsner data build`` has as flags, and those of them that are switches.
BUILD_PARAMETERS = (
    "out", "corpus", "fold", "data_dir", "allow_leakage", "from_hub", "format", "annotator", "label_map",
    "split_ratios", "seed", "splits_file", "strict", "overwrite", "name", "license",
)
BUILD_SWITCHES = ("allow_leakage", "from_hub", "strict", "overwrite")


def flag(parameter: str) -> str:
    """The command-line flag of a parameter: ``split_ratios`` -> ``--split-ratios``."""
    return "--" + parameter.replace("_", "-")


def _spellings(parameters: Iterable[str], switches: Iterable[str],
               also: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """``(flag, Python spelling)`` pairs, longest flag first (so that ``--split`` never eats ``--split-ratios``)."""
    on = set(switches)
    pairs = [(flag(p), f"{p}=True" if p in on else f"`{p}`") for p in parameters] + list((also or {}).items())
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def _reworded(exc: ConfigError, pairs: list[tuple[str, str]], to_python: bool) -> ConfigError | None:
    """The same error in the other spelling, or None when its message names none of these options."""
    message = str(exc)
    for cli, python in pairs:
        old, new = (cli, python) if to_python else (python, cli)
        message = re.sub(rf"(?<![\w`-]){re.escape(old)}(?![\w`-])", new.replace("\\", "\\\\"), message)
    return ConfigError(message) if message != str(exc) else None


@contextlib.contextmanager
def _respelled(pairs: list[tuple[str, str]], to_python: bool) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` naming one spelling of these options in the other. Only errors of exactly
    that class are reworded (its subclasses carry more than a message)."""
    try:
        yield
    except ConfigError as exc:
        new = _reworded(exc, pairs, to_python=to_python) if type(exc) is ConfigError else None
        if new is None:
            raise
        raise new.with_traceback(exc.__traceback__) from None


def parameter_names(parameters: Iterable[str], switches: Iterable[str] = (),
                    also: Mapping[str, str] | None = None) -> contextlib.AbstractContextManager[None]:
    """Re-raise a :class:`ConfigError` that names these parameters' flags (``--out``, ``--overwrite``) naming the
    parameters instead (`` `out` ``, ``overwrite=True``): what a Python caller wrote.

    ``also``: further ``{command-line words: Python words}`` (``{"--set": "`overrides`"}``).
    """
    return _respelled(_spellings(parameters, switches, also), to_python=True)


def flag_names(parameters: Iterable[str], switches: Iterable[str] = ()) -> contextlib.AbstractContextManager[None]:
    """The inverse of :func:`parameter_names`, for a command calling the Python API: its errors name its flags."""
    return _respelled(_spellings(parameters, switches), to_python=False)


def _check_sources(inputs: Sequence[str | Path], corpus: str | None, annotator: str | None,
                   corpus_only: Mapping[str, Any], license: str | None = None) -> None:
    """Files or a named corpus, and only the options that apply to the one given."""
    if corpus and inputs:
        raise ConfigError("give either `inputs` (annotated files) or `corpus`, not both")
    if corpus and annotator is not None:
        raise ConfigError("`annotator` applies to Label Studio `inputs`, not to a `corpus`")
    if corpus and license is not None:
        raise ConfigError("`license` applies to annotated `inputs`; a `corpus` has its own licence")
    if not corpus:
        if not inputs:
            raise ConfigError("nothing to build: give `inputs` (annotated files) or `corpus` (a corpus name)")
        for parameter, value in corpus_only.items():
            if value:
                raise ConfigError(f"`{parameter}` only applies with `corpus`")


def build_dataset(
    inputs: str | Path | Sequence[str | Path] | None = None,
    *,
    out: str | Path,
    corpus: str | None = None,
    fold: str | int | None = None,
    data_dir: str | Path | None = None,
    allow_leakage: bool = False,
    from_hub: bool = False,
    format: str | None = None,
    annotator: str | None = None,
    label_map: str | Path | Mapping[str, str] | None = None,
    split_ratios: str | Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 42,
    splits_file: str | Path | None = None,
    strict: bool = False,
    overwrite: bool = False,
    name: str | None = None,
    license: str | None = None,
    log: Callable[[str], None] | None = None,
    command: str | None = None,
) -> BuildReport:
    """Build a dataset folder (what ``parsner data build`` does) from annotated files or a named corpus.

    The folder holds a Hugging Face ``DatasetDict`` (splits ``train``, ``validation``, ``test``) with
    ``stats.json``, ``audit.json``, ``build.json`` and a dataset card, and is written only when everything
    succeeded (docs/ARCHITECTURE.md, "Dataset on disk").

    Args:
        inputs: Annotated files (CoNLL, JSONL, doccano, Label Studio, brat, WebAnno/INCEpTION TSV, Prodigy); one
            path or several. Give either these or ``corpus``.
        out: The dataset folder to write; it must not exist unless ``overwrite=True``.
        corpus: A named corpus instead of files: ``peyma``, ``arman``, ``parstwiner`` or ``sample`` (embedded).
        fold: ARMAN's fold, ``1``-``3`` (``"all"``, the leaked union, needs ``allow_leakage=True``).
        data_dir: The folder holding the corpora (default: ``$PARSNER_SHARED/data``).
        allow_leakage: Allow a build whose test sentences are inside its training split.
        from_hub: Load ``corpus`` from the Hugging Face Hub (needs the network).
        format: The input format (default: detected per file).
        annotator: For Label Studio tasks with several annotations: an annotator's id or e-mail, ``"first"`` or
            ``"last"`` (default: refuse such tasks and list them).
        label_map: A label map preset, a YAML/JSON file, or a mapping ``{old_type: new_type}``.
        split_ratios: Train, validation and test fractions of a seeded split by document (``"0.8,0.1,0.1"`` or a
            sequence of three numbers).
        seed: The seed of that split.
        splits_file: A JSON file ``{split: [document ids]}`` fixing the splits.
        strict: Refuse invalid IOB2 instead of repairing orphan ``I-`` tags.
        overwrite: Replace an existing dataset folder that parsner wrote.
        name: The dataset's name on its card (default: the corpus's or the folder's name).
        license: The licence of ``inputs`` that are not a known corpus's files: a Hub licence id (``mit``,
            ``cc-by-4.0``, ...), ``research-only`` or ``academic-only`` (default: unknown, card ``license: other``).
            Known corpus files keep their corpus's licence; build.json and the card carry the most restrictive.
        log: Called with each progress line (default: the ``parsner.data.api`` logger, at INFO).
        command: The command line recorded in ``build.json`` and the card, when there was one.

    Returns:
        The :class:`~parsner.data.dataset.BuildReport`: the folder, sentences per split, label names, stats,
        audit, build record, warnings and timings.

    Raises:
        ConfigError: Options that cannot be used together, or an output that may not be written.
        InputError: A bad input file (the message names the file and line).
    """
    paths = [inputs] if isinstance(inputs, str | Path) else list(inputs or [])
    _check_sources(paths, corpus, annotator, {"fold": fold, "data_dir": data_dir, "from_hub": from_hub}, license)
    options: dict[str, Any] = {"format": format, "label_map": label_map, "strict": strict,
                               "split_ratios": split_ratios, "seed": seed, "overwrite": overwrite, "command": command}
    options["log"] = log or logging.getLogger(__name__).info
    if name is not None or not corpus:  # a corpus names itself on its card
        options["name"] = name
    if annotator is not None:
        options["reader_options"] = {"annotator": annotator}
    if splits_file is not None:
        options["splits_file"] = splits_file
    if license is not None:
        options["license"] = license
    with parameter_names(BUILD_PARAMETERS, BUILD_SWITCHES):
        if corpus:
            from parsner.data.corpora import build_corpus

            return build_corpus(corpus, out, data_dir=data_dir, fold=fold, allow_leakage=allow_leakage,
                                from_hub=from_hub, **options)
        from parsner.data.dataset import build_dataset as build_from_files

        return build_from_files([Path(p) for p in paths], out, **options)


def build_summary(report: BuildReport) -> Iterator[str]:
    """What ``parsner data build`` prints about a finished build, one piece at a time: stats, audit, the folder
    (its warnings are :func:`warning_banner`'s)."""
    from parsner.data.datastats import summary_lines

    yield from summary_lines(report.stats, report.audit)
    t = report.timings
    yield (
        f"wrote {report.out} ({', '.join(f'{s} {n:,}' for s, n in report.splits.items())} sentences; "
        f"{len(report.label_names)} labels) in {t.get('total', 0):.1f}s"
    )


def warning_banner(warning: str) -> str:
    """A build's or an audit's warning, between two bars of ``!`` (shown after everything else)."""
    bar = "!" * min(100, len(warning) + 10)
    return f"{bar}\nparsner: WARNING: {warning}\n{bar}"
