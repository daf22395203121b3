"""The evaluation stage's public function, :func:`evaluate` (``parsner.evaluate``): a model scored on a split of a
built dataset with seqeval, as ``parsner eval --model --data`` does (the command calls it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from parsner.data.api import parameter_names
from parsner.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from parsner.evaluation.evaluate import EvalResult

#: ``parsner.evaluate``'s parameters that ``parsner eval`` has as flags, and those of them that are switches.
EVAL_PARAMETERS = (
    "model", "data", "split", "out", "label_map", "normalizer", "batch_size", "device", "bootstrap", "seed",
    "overwrite",
)
EVAL_SWITCHES = ("overwrite",)


def evaluate(
    model: str | Path,
    data: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
    label_map: str | Path | Mapping[str, str] | None = None,
    normalizer: str = "auto",
    bootstrap: int = 1000,
    seed: int = 0,
    plots: bool = True,
    overwrite: bool = False,
    raw_text: bool = True,
) -> EvalResult:
    """Score a model on a dataset split (what ``parsner eval --model --data`` does).

    Entity-level precision, recall and F1 with seqeval in the default (conlleval) and strict IOB2 modes, a
    bootstrap 95% confidence interval of F1, and an error analysis.

    Args:
        model: A run directory (``parsner.train``'s ``out``), any token-classification model directory, or a hub id.
        data: A dataset folder (``parsner.build_dataset``'s ``out``).
        split: The split to score: ``test``, ``validation`` or ``train``.
        out: Where to write ``metrics.json``, ``predictions.conll``, ``analysis.json``, ``report.md`` (and plots);
            ``None`` writes nothing.
        batch_size: Sentences per prediction batch.
        device: A torch device (default: CUDA when available, else the CPU).
        label_map: Maps the model's types onto the data's: a preset (``arman-to-peyma``), a YAML/JSON file, or a
            mapping ``{TYPE: TYPE}``.
        normalizer: Text preprocessing before the tokenizer: ``auto`` (the model's own), ``parsbert``,
            ``parsbert-zwnj``, ``none``, or a ``normalizer.json`` file.
        bootstrap: Bootstrap resamples for the F1 interval (0 leaves it out).
        seed: The bootstrap's seed.
        plots: Write ``confusion.png`` (and a run's ``curves.png``) into ``out``.
        overwrite: Replace an existing ``out`` that parsner wrote as an evaluation.
        raw_text: Also tag the split's sentences as raw text (tokens joined with spaces) and score character
            spans, beside the token-level scores (``metrics["raw_text"]``; :mod:`parsner.evaluation.rawtext`).

    Returns:
        The :class:`~parsner.evaluation.evaluate.EvalResult`: ``metrics`` (``metrics["strict"]["f1"]``,
        ``metrics["default"]["f1"]``, ...), the error ``analysis``, the Markdown ``report`` and ``out_dir``.

    Raises:
        ConfigError: A bad option, or an ``out`` that may not be written.
        InputError: A dataset without that split.
        ModelLoadError: A model that cannot be loaded.
    """
    from parsner.atomic import check_output_dir
    from parsner.evaluation.evaluate import evaluate_model

    check_eval_options(bootstrap=bootstrap, batch_size=batch_size)
    with parameter_names(EVAL_PARAMETERS, EVAL_SWITCHES):
        if out is not None:  # before minutes of prediction: only an earlier evaluation is replaced
            check_output_dir(out, kind="eval", overwrite=overwrite,
                             inputs=[model if Path(model).exists() else None, data])
        if label_map is not None and not isinstance(label_map, Mapping):
            from parsner.labels import load_label_map

            load_label_map(label_map)  # a bad map fails here, before the model loads
        return evaluate_model(Path(model), data, split, out=out, batch_size=batch_size, device=device,
                              label_map=label_map, normalizer=normalizer, n_bootstrap=bootstrap, seed=seed,
                              overwrite=overwrite, plots=plots, raw_text=raw_text)


def check_eval_options(*, bootstrap: int, batch_size: int) -> None:
    """The numeric options' bounds, checked before anything is read (``parsner eval --predictions`` too)."""
    if bootstrap < 0:
        raise ConfigError("`bootstrap` must be >= 0")
    if batch_size < 1:
        raise ConfigError("`batch_size` must be >= 1")


def eval_summary(result: EvalResult, *, quiet: bool = False, plots: bool = True) -> list[str]:
    """What ``parsner eval`` prints: the report (unless ``quiet``), then what it wrote."""
    pngs = ", confusion.png" + (", threshold.png, reliability.png" if result.metrics.get("confidence") else "") \
        + (", raw_text_reliability.png" if result.metrics.get("raw_text") else "")
    wrote = (f"wrote {result.out_dir}/ (metrics.json, predictions.conll, analysis.json, report.md"
             f"{pngs if plots else ''})")
    return [wrote] if quiet else [result.report, wrote]
