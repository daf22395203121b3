"""The model card (``README.md``) of a trained run, following Hugging Face conventions.

YAML front matter (``language: fa``, ``library_name``, ``pipeline_tag``, ``datasets``, ``metrics``,
``model-index`` with the validation scores of the actual run), then usage, training data and
hyper-parameters, results, limitations — and, for stand-ins, a warning at the top that the scores are
not ParsBERT's.
"""

from __future__ import annotations

from typing import Any

import yaml

from parsner.training.config import RunConfig

#: Hub ids of known corpora, used in the card's `datasets:` field when the dataset name matches.
KNOWN_DATASETS = {"peyma": "PNLPhub/PEYMA", "arman": "ArmanPersoNERCorpus", "parstwiner": "ParsTwiNER"}


def _pct(x: Any) -> str:
    try:
        return f"{100 * float(x):.2f}"
    except (TypeError, ValueError):
        return "n/a"


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


def _front_matter(cfg: RunConfig, meta: dict[str, Any], m: dict[str, Any], dataset_name: str,
                  publish_scores: bool = True) -> list[str]:
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
    return ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]


def _title(cfg: RunConfig, stand_in: str | None) -> list[str]:
    lines = [f"# {cfg.name}: Persian named-entity recognition (ParsNER)", ""]
    if stand_in:
        lines += [
            f"> **WARNING — {stand_in}.** This model was trained from randomly initialised weights as an "
            "offline stand-in for ParsBERT; its scores say nothing about ParsBERT. To train the real model, "
            "run `parsner train --config training/peyma.yaml --model HooshvareLab/bert-fa-base-uncased` on a "
            "machine that can download it (or pass a local copy).",
            "",
        ]
    return lines


def _usage(cfg: RunConfig, meta: dict[str, Any], dataset_name: str) -> list[str]:
    labels = meta.get("labels", [])
    types = sorted({lab[2:] for lab in labels if lab != "O"})
    return [
        f"Token classifier fine-tuned from `{meta.get('base_model')}` with "
        f"[ParsNER](https://github.com/) on `{dataset_name}`. Entity types: {', '.join(types) or 'none'} "
        "(IOB2 tags).",
        "",
        "## Usage",
        "",
        "```python",
        "from parsner import Tagger",
        "",
        f'tagger = Tagger.from_pretrained("models/{cfg.name}")',
        'print(tagger("حمید رحمانی دیروز به تهران رفت."))',
        "```",
        "",
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
        "## Usage", "", "```python", "from parsner import Tagger  # pip install 'parsner[crf]'", "",
        f'tagger = Tagger.from_pretrained("models/{cfg.name}")', 'print(tagger("حمید رحمانی دیروز به تهران رفت."))',
        "```", "",
        "## Training", "", "| setting | value |", "|---|---|",
        *[f"| {key} | `{getattr(cfg, key)}` |" for key in CRF_CARD_SETTINGS], "",
        f"{metrics.get('iterations')} L-BFGS iterations in {float(metrics.get('train_runtime_s') or 0):.0f} s; word "
        f"clusters for {clusters.get('clustered_words', 0):,} words, learnt from {clusters.get('words', 0):,} words "
        f"of text; {names:,} gazetteer names from other corpora.{seen}", "",
    ]
    return lines


def _training(cfg: RunConfig, metrics: dict[str, Any]) -> list[str]:
    lines = ["## Training", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | `{getattr(cfg, key)}` |" for key in CARD_SETTINGS]
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
        "## Results (validation split of this run)",
        "",
        "| seqeval mode | precision | recall | F1 |",
        "|---|---|---|---|",
        f"| strict IOB2 | {_pct(m.get('precision_strict'))} | {_pct(m.get('recall_strict'))} | "
        f"{_pct(m.get('f1_strict'))} |",
        f"| default (conlleval-like) | {_pct(m.get('precision_default'))} | {_pct(m.get('recall_default'))} | "
        f"{_pct(m.get('f1_default'))} |",
        "",
        (f"The checkpoint was selected by validation `{meta.get('selection_metric')}`; these" if
         meta.get("selection_metric") else "These") + " are validation scores, not test scores (run `parsner eval` "
        "for the test split).",
        "",
    ]


def _limitations(meta: dict[str, Any], stand_in: str | None) -> list[str]:
    lines = [
        "## Limitations",
        "",
        "- Trained on news text; expect lower scores on informal text (social media, chat).",
        "- Input must be split into words and normalised like the training data (`normalizer.json`); "
        "the `Tagger` does this.",
        "- The training corpora are licensed for research use; check the dataset's licence before any "
        "other use.",
    ]
    if not _is_crf(meta):
        lines.append(f"- Windows of {meta.get('max_length')} sub-words with a stride of {meta.get('stride')}: words "
                     "near a window edge see less context.")
    if stand_in:
        lines.append(f"- **{stand_in}.**")
    return lines


def render_model_card(
    *, cfg: RunConfig, meta: dict[str, Any], metrics: dict[str, Any], dataset_name: str
) -> str:
    """README.md of a run: front matter, title (and stand-in warning), usage, training, results, limitations."""
    m = metrics.get("metrics", {})
    seen = bool(metrics.get("validation_seen_in_training"))
    stand_in = meta.get("stand_in_description")
    if _is_crf(meta):
        body = _crf_sections(cfg, meta, metrics, dataset_name)
    else:
        body = [*_usage(cfg, meta, dataset_name), *_training(cfg, metrics)]
    lines = [
        *_front_matter(cfg, meta, m, dataset_name, publish_scores=not seen),
        *_title(cfg, stand_in),
        *body,
        *_results(m, meta, seen),
        *_limitations(meta, stand_in),
    ]
    return "\n".join(lines) + "\n"
