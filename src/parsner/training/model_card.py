"""The model card (``README.md``) of every training job's output, following Hugging Face conventions.

One renderer, :func:`render_model_card`, for each kind of output: a fine-tuned run (``kind="run"``: a token
classifier, or a feature CRF), a base model adapted by masked-LM training (``"pretrain"``) and a distilled
student (``"distill"``). Every card is YAML front matter, a ``# NAME: WHAT (ParsNER)`` title and its kind's
sections, built from the shared ones here (usage, settings, the validation scores) — and, for stand-ins, a warning
that the scores are not ParsBERT's.

A run's front matter has ``language: fa``, ``license``, ``library_name``, ``pipeline_tag``, ``datasets``, ``metrics``
and ``model-index`` with the validation scores of the actual run; then usage, training data and hyper-parameters,
results, limitations. Every card ends with its licence: ``meta["license"]``, the record the job made of its training
data's licences (:mod:`parsner.data.licence`: the most restrictive of them, each source named with its terms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import yaml

from parsner.data import licence
from parsner.training.config import RunConfig

#: Hub ids of known corpora, used in the card's `datasets:` field when the dataset name matches.
KNOWN_DATASETS = {"peyma": "PNLPhub/PEYMA", "arman": "ArmanPersoNERCorpus", "parstwiner": "ParsTwiNER"}


#: The sentence every card's usage example tags.
EXAMPLE = "حمید رحمانی دیروز به تهران رفت."


class _Card(NamedTuple):
    """A kind's part of a card: its front matter (``flow``: YAML lists on one line), title and sections, and what
    its licence covers (``made_from``)."""

    front: dict[str, Any]
    name: str
    what: str
    body: list[str]
    flow: bool = False
    made_from: str = "the data this model was trained on"


def _pct(x: Any, missing: str = "n/a") -> str:
    try:
        return f"{100 * float(x):.2f}"
    except (TypeError, ValueError):
        return missing


# ------------------------------------------------------------------------------------------ shared sections


def _front_matter(front: dict[str, Any], flow: bool = False) -> list[str]:
    dumped = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=None if flow else False)
    return ["---", dumped.rstrip(), "---", ""]


def _usage(path: Any, install: str = "") -> list[str]:
    """The Python example: the Tagger loading the output at ``path`` and tagging a sentence."""
    return ["## Usage", "", "```python", f"from parsner import Tagger{install}", "",
            f'tagger = Tagger.from_pretrained("{path}")', f'print(tagger("{EXAMPLE}"))', "```", ""]


def _settings(cfg: Any, keys: tuple[str, ...]) -> list[str]:
    return ["| setting | value |", "|---|---|", *[f"| {key} | `{getattr(cfg, key)}` |" for key in keys]]


def _scores(m: dict[str, Any], modes: dict[str, str], missing: str) -> list[str]:
    """The validation scores table, one row per seqeval mode (``modes``: ``{mode: row name}``)."""
    lines = ["## Results (validation split of this run)", "", "| seqeval mode | precision | recall | F1 |",
             "|---|---|---|---|"]
    for mode, shown in modes.items():
        cells = [_pct(m.get(f"{k}_{mode}"), missing) for k in ("precision", "recall", "f1")]
        lines.append(f"| {shown} | " + " | ".join(cells) + " |")
    return lines


# ------------------------------------------------------------------------------------------ a fine-tuned run


def _dataset_id(name: str) -> str:
    low = name.lower()
    for key, value in KNOWN_DATASETS.items():
        if key in low:
            return value
    return name


#: RunConfig fields listed in the card's training table, in this order.
CARD_SETTINGS = ("model", "data", "epochs", "learning_rate", "batch_size", "gradient_accumulation_steps",
                 "warmup_ratio", "weight_decay", "max_length", "stride", "label_all_subtokens", "seed",
                 "selection_metric", "early_stopping_patience", "normalizer", "max_train_samples")


def _model_index(cfg: RunConfig, m: dict[str, Any], dataset_name: str, dataset_id: str) -> list[dict[str, Any]]:
    """The ``model-index`` entry: this run's validation scores, in the Hub's schema."""
    return [{
        "name": cfg.name,
        "results": [{
            "task": {"type": "token-classification", "name": "Named Entity Recognition"},
            "dataset": {"name": dataset_name, "type": dataset_id, "split": "validation"},
            "metrics": [
                {"type": "f1", "value": round(float(m.get("f1_strict", 0.0)), 4),
                 "name": "entity F1 (seqeval strict IOB2)"},
                {"type": "precision", "value": round(float(m.get("precision_strict", 0.0)), 4),
                 "name": "entity precision (strict)"},
                {"type": "recall", "value": round(float(m.get("recall_strict", 0.0)), 4),
                 "name": "entity recall (strict)"},
                {"type": "f1", "value": round(float(m.get("f1_default", 0.0)), 4),
                 "name": "entity F1 (seqeval default, conlleval-like)"},
            ],
        }],
    }]


def _run_front(cfg: RunConfig, meta: dict[str, Any], m: dict[str, Any], dataset_name: str,
               publish_scores: bool = True) -> dict[str, Any]:
    stand_in = meta.get("stand_in_description")
    dataset_id = _dataset_id(dataset_name)
    tags = ["token-classification", "ner", "persian", "parsner"]
    if stand_in:
        tags.append("stand-in")
    front: dict[str, Any] = {
        "language": ["fa"],
        "library_name": "python-crfsuite" if _is_crf(meta) else "transformers",
        "pipeline_tag": "token-classification",
        "tags": tags,
        "datasets": [dataset_id],
        "metrics": ["seqeval"],
    }
    if not stand_in and meta.get("base_model") and not _is_crf(meta):
        front["base_model"] = meta["base_model"]
    if publish_scores:  # not when the validation scores are on training sentences
        front["model-index"] = _model_index(cfg, m, dataset_name, dataset_id)
    return front


def _stand_in_warning(stand_in: str | None) -> list[str]:
    if not stand_in:
        return []
    return [
        f"> **WARNING — {stand_in}.** This model was trained from randomly initialised weights as an "
        "offline stand-in for ParsBERT; its scores say nothing about ParsBERT. To train the real model, "
        "run `parsner train --config training/peyma.yaml --model HooshvareLab/bert-fa-base-uncased` on a "
        "machine that can download it (or pass a local copy).",
        "",
    ]


def _classifier_usage(cfg: RunConfig, meta: dict[str, Any], dataset_name: str) -> list[str]:
    labels = meta.get("labels", [])
    types = sorted({lab[2:] for lab in labels if lab != "O"})
    return [
        f"Token classifier fine-tuned from `{meta.get('base_model')}` with "
        f"[ParsNER](https://github.com/) on `{dataset_name}`. Entity types: {', '.join(types) or 'none'} "
        "(IOB2 tags).",
        "",
        *_usage(f"models/{cfg.name}"),
        "It also loads with plain transformers (`AutoModelForTokenClassification.from_pretrained`, "
        "`AutoTokenizer.from_pretrained`), but then **apply the saved normalisation yourself** "
        "(`normalizer.json`, `parsner.data.normalize.PersianNormalizer.load`) to each word before tokenising, "
        "and read the prediction of each word from its first sub-token.",
        "",
    ]


#: The settings of a feature-CRF run (``model: crf``) listed in its card.
CRF_CARD_SETTINGS = ("model", "data", "crf_c1", "crf_c2", "crf_max_iterations", "crf_window", "crf_affix",
                     "cluster_sizes", "cluster_text", "cluster_min_count", "gazetteer_data", "gazetteer_max_words",
                     "crf_train_on_validation", "seed", "normalizer", "max_train_samples")


def _is_crf(meta: dict[str, Any]) -> bool:
    return meta.get("model_type") == "feature-crf"


def _crf_sections(cfg: RunConfig, meta: dict[str, Any], metrics: dict[str, Any], dataset_name: str) -> list[str]:
    """Usage and training of a feature CRF: no transformers, no sub-words."""
    types = sorted({lab[2:] for lab in meta.get("labels", []) if lab != "O"})
    clusters = metrics.get("word_clusters", {})
    names = int(metrics.get("gazetteer", {}).get("names", 0))
    seen = (" It was trained on the train and validation splits (`crf_train_on_validation`)."
            if metrics.get("validation_seen_in_training") else "")
    lines = [
        "A linear-chain CRF over word, shape, affix, context, word-cluster and gazetteer features (python-crfsuite), "
        f"trained with [ParsNER](https://github.com/) on `{dataset_name}`; no pretrained weights. Entity types: "
        f"{', '.join(types) or 'none'} (IOB2 tags).", "",
        *_usage(f"models/{cfg.name}", install="  # pip install 'parsner[crf]'"),
        "## Training", "", *_settings(cfg, CRF_CARD_SETTINGS), "",
        f"{metrics.get('iterations')} L-BFGS iterations in {float(metrics.get('train_runtime_s') or 0):.0f} s; word "
        f"clusters for {clusters.get('clustered_words', 0):,} words, learnt from {clusters.get('words', 0):,} words "
        f"of text; {names:,} gazetteer names from other corpora.{seen}", "",
    ]
    return lines


def _training(cfg: RunConfig, metrics: dict[str, Any]) -> list[str]:
    lines = ["## Training", "", *_settings(cfg, CARD_SETTINGS)]
    enc = metrics.get("encoding", {})
    lines += [
        "",
        f"Trained {metrics.get('epochs_trained')} epochs ({metrics.get('global_step')} optimiser steps) in "
        f"{float(metrics.get('train_runtime_s') or 0):.0f} s. Long sentences are split into overlapping "
        f"windows, never truncated: {enc.get('train', {}).get('windowed_sentences', 0)} training and "
        f"{enc.get('validation', {}).get('windowed_sentences', 0)} validation sentences were windowed.",
        "",
    ]
    return lines


def _results(m: dict[str, Any], meta: dict[str, Any], seen: bool = False) -> list[str]:
    if seen:
        return ["## Results", "", "The validation split was part of the training data (`crf_train_on_validation`), "
                f"so its F1 ({_pct(m.get('f1_default'))}) says nothing about quality on new text: run `parsner eval` "
                "on a test split.", ""]
    return [
        *_scores(m, {"strict": "strict IOB2", "default": "default (conlleval-like)"}, missing="n/a"),
        "",
        (f"The checkpoint was selected by validation `{meta.get('selection_metric')}`; these" if
         meta.get("selection_metric") else "These") + " are validation scores, not test scores (run `parsner eval` "
        "for the test split).",
        "",
    ]


def _entity_scores(metrics: dict[str, Any]) -> list[str]:
    """What an entity's ``score`` means for this run: calibrated (calibration.json) or raw."""
    cal = metrics.get("calibration")
    if not isinstance(cal, dict):
        return []
    if cal.get("file"):
        ece_raw, ece_fit = cal.get("ece_raw"), cal.get("ece_fitted")
        ece = (f" (expected calibration error {ece_raw:.3f} raw, {ece_fit:.3f} after, on those entities)"
               if isinstance(ece_raw, float) and isinstance(ece_fit, float) else "")
        who = "a CRF trained on the training split alone (with these settings)" if cal.get("model") else "it"
        text = ("An entity's `score` is the probability of its span (the product of its words' tag "
                "probabilities), calibrated on the "
                f"{cal.get('entities', 0):,} entities {who} predicted on the validation split{ece} by the isotonic map "
                "in `calibration.json`; `parsner eval` measures it on a test split. Filter with "
                "`parsner predict --min-score X`.")
    else:
        why = str(cal.get("why", "")).removeprefix("entity scores are raw: ")
        text = (f"An entity's `score` is the raw probability of its span, not calibrated ({why}); "
                "run `parsner eval` before choosing a `--min-score`.")
    return ["### Entity scores", "", text, ""]


def _limitations(meta: dict[str, Any], stand_in: str | None) -> list[str]:
    lines = [
        "## Limitations",
        "",
        "- Trained on news text; expect lower scores on informal text (social media, chat).",
        "- Input must be split into words and normalised like the training data (`normalizer.json`); "
        "the `Tagger` does this.",
    ]
    if not _is_crf(meta):
        lines.append(f"- Windows of {meta.get('max_length')} sub-words with a stride of {meta.get('stride')}: words "
                     "near a window edge see less context.")
    if stand_in:
        lines.append(f"- **{stand_in}.**")
    return lines


def _run_card(cfg: RunConfig, meta: dict[str, Any], metrics: dict[str, Any], dataset_name: str) -> _Card:
    """A fine-tuned run (a token classifier or a feature CRF): usage, training, results, limitations."""
    m = metrics.get("metrics", {})
    seen = bool(metrics.get("validation_seen_in_training"))
    stand_in = meta.get("stand_in_description")
    if _is_crf(meta):
        body = _crf_sections(cfg, meta, metrics, dataset_name)
    else:
        body = [*_classifier_usage(cfg, meta, dataset_name), *_training(cfg, metrics)]
    body = [*_stand_in_warning(stand_in), *body, *_results(m, meta, seen), *_entity_scores(metrics),
            *_limitations(meta, stand_in)]
    return _Card(_run_front(cfg, meta, m, dataset_name, publish_scores=not seen), cfg.name,
                 "Persian named-entity recognition", body)


# ------------------------------------------------------------------------------------------ pre-training


def _pretrain_card(cfg: Any, meta: dict[str, Any], info: dict[str, Any], _dataset_name: str) -> _Card:
    """A base model adapted by masked-LM training: the text it read, the test guard, training, held-out loss."""
    m = info["metrics"]
    front = {"language": ["fa"], "library_name": "transformers", "pipeline_tag": "fill-mask",
             "tags": ["persian", "parsner", "domain-adaptive-pretraining"]}
    lines = []
    if meta["stand_in"]:
        lines += [f"> **{meta['stand_in_description']}** — pre-trained here from random weights on the text "
                  "below only; it is not ParsBERT.", ""]
    lines += [
        f"Continued masked-LM training of `{cfg.model}` on unlabelled text, "
        f"{'whole-word' if cfg.whole_word_masking else 'sub-word'} masking of {cfg.mlm_probability:.0%} of the "
        f"sub-words, normaliser `{cfg.normalizer}` (saved as `normalizer.json`). Fine-tune it for NER with",
        "", "```bash",
        f"parsner train --config training/peyma.yaml --model {cfg.out_dir} --normalizer {cfg.normalizer}",
        "```", "", "## Text", "", "| input | read as | sentences | words |", "|---|---|---:|---:|",
    ]
    lines += [f"| `{s['path']}` | {s['kind']} | {s['sentences']:,} | {s['words']:,} |" for s in info["text"]]
    g = info["test_guard"]
    lines += ["", f"Test guard ({', '.join(f'`{x}`' for x in g['guards']) or 'none given'}): "
              f"{g['overlapping_sentences']} sentence(s) contained a test sentence of ≥ {g['min_words']} words "
              f"(mode `{g['mode']}`).", "", "## Training", "",
              f"{info['global_step']} optimiser steps ({info['epochs_trained']} epochs) in "
              f"{info['train_runtime_s']:.0f} s; batch {cfg.batch_size}, learning rate {cfg.learning_rate:g}, "
              f"windows of {cfg.max_length} sub-words, seed {cfg.seed}."]
    if "heldout_mlm_loss" in m:
        lines.append(f"Held-out masked-LM loss {m['heldout_mlm_loss']:.3f} (perplexity "
                     f"{m['heldout_perplexity']:.1f}) on {m['heldout_sentences']} sentences.")
    return _Card(front, cfg.out_dir.name, "a Persian base model adapted by masked-LM training", lines, flow=True,
                 made_from="the text this model was trained on")


# ------------------------------------------------------------------------------------------ distillation


def _distill_card(cfg: Any, meta: dict[str, Any], info: dict[str, Any], _dataset_name: str) -> _Card:
    """A distilled student: what it learnt from, usage, validation scores, training."""
    types = sorted({lab[2:] for lab in meta["labels"] if lab != "O"})
    front = {"language": ["fa"], "library_name": "transformers", "pipeline_tag": "token-classification",
             "tags": ["token-classification", "ner", "persian", "parsner", "distillation"]}
    lines = [
        f"Student `{meta['student']}` trained to reproduce the per-word tag distributions of the teacher "
        f"`{meta['distilled_from']}` (KL at temperature {cfg.temperature:g}, weight {cfg.alpha:g}; gold tags "
        f"weight {1 - cfg.alpha:g}) on `{cfg.data}` ({info['labelled_sentences']} labelled sentences) and "
        f"{info['unlabelled_sentences']} unlabelled sentences. Entity types: {', '.join(types)} (IOB2). "
        "The teacher's labels and normaliser (`normalizer.json`) carry over.", "",
    ]
    if meta.get("stand_in_description"):
        lines += [f"> **{meta['stand_in_description']}.**", ""]
    lines += [*_usage(cfg.out_dir), *_scores(info["metrics"], {"strict": "strict", "default": "default"}, "-")]
    lines += ["", f"{info['global_step']} optimiser steps ({info['epochs_trained']} epochs) in "
              f"{info['train_runtime_s']:.0f} s, batch {cfg.batch_size}, learning rate {cfg.learning_rate:g}, "
              f"seed {cfg.seed}. These are validation scores; run `parsner eval` for the test split."]
    return _Card(front, cfg.name, "a distilled Persian NER tagger", lines, flow=True,
                 made_from="the data this model and its teacher were trained on")


#: Each kind of output's part of its card.
KINDS: dict[str, Callable[[Any, dict[str, Any], dict[str, Any], str], _Card]] = {
    "run": _run_card, "pretrain": _pretrain_card, "distill": _distill_card,
}


def render_model_card(*, cfg: Any, meta: dict[str, Any], metrics: dict[str, Any], dataset_name: str = "",
                      kind: str = "run") -> str:
    """README.md of a job's output: front matter, ``# NAME: WHAT (ParsNER)``, then the sections of its ``kind``.

    ``cfg`` is the job's config (a :class:`RunConfig` for a run, the pretrain or distill config), ``meta`` its
    ``parsner.json`` (whose ``license`` is the licence record of its training data; none: unknown), ``metrics`` its
    ``metrics.json`` document; ``dataset_name`` names a run's training data.
    """
    card = KINDS[kind](cfg, meta, metrics, dataset_name)
    record = meta.get("license")
    record = record if isinstance(record, dict) else licence.combine([])
    front = {k: v for k, v in card.front.items() if k == "language"}  # the Hub's order: language, then licence
    front.update({**licence.front_matter(record), **card.front})
    lines = [*_front_matter(front, card.flow), f"# {card.name}: {card.what} (ParsNER)", "", *card.body]
    lines += ["", "## Licence", "", *licence.card_lines(record, card.made_from)]
    return "\n".join(lines) + "\n"
