"""Feature-CRF ablations behind RESULTS §13's "tried and not kept" table: one setting per call, test and validation F1.

    python eval/crf_ablation.py --name gaz --gaz ../shared/data/arman/ArmanPersoNERCorpus/train_fold1.txt ... --gazword
    python eval/crf_ablation.py --name arman --config training/arman-cpu.yaml --data runs/data/arman-fold1 ...

It reuses the recipe's pieces (its config for the cluster text, the clusters, the word features) and varies what the
recipe fixes: c1/c2, training on validation, a gazetteer whose types keep their source corpus's folder name, the
``gw`` word features and those of the neighbours, and a jackknifed gazetteer from the run's own training split.
Prints one JSON line (and appends it to ``--log``). Scores are seqeval default F1 of crfsuite's Viterbi tags; the
validation F1 means nothing with ``--tv``. A scratch tool: `parsner train` is the product.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from parsner.data.dataset import load_dataset_dir
from parsner.data.pretext import TextCorpus, find_overlaps
from parsner.data.readers import read_file
from parsner.data.wordfeatures import FeatureSpec, sentence_features
from parsner.evaluation import metrics
from parsner.labels import spans_from_tags
from parsner.training.config import RunConfig, load
from parsner.training.crf_fit import test_sentences, word_clusters
from parsner.training.train import load_training_data

FOLDS = 5  # jackknife folds of the own-split gazetteer


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--config", default="training/peyma-cpu.yaml")
    ap.add_argument("--data", default="runs/data/peyma")
    ap.add_argument("--c1", type=float, default=0.05)
    ap.add_argument("--c2", type=float, default=0.01)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--tv", action="store_true", help="train on train+validation")
    ap.add_argument("--noclusters", action="store_true")
    ap.add_argument("--gaz", nargs="*", default=[], help="annotated files of other corpora")
    ap.add_argument("--gazmax", type=int, default=6)
    ap.add_argument("--gazword", action="store_true", help="gw: a word of a name of that type")
    ap.add_argument("--nbgw", action="store_true", help="gw of the neighbouring words too")
    ap.add_argument("--owngaz", action="store_true", help="jackknifed gazetteer from the own training split")
    ap.add_argument("--log", default="runs/crf_ablation.jsonl")
    return ap.parse_args()


def external_gazetteer(a: argparse.Namespace, norm, tests: list) -> tuple[dict, dict]:
    """(names -> {type}, word -> {type}); types are SOURCE_FOLDER:TYPE; test sentences guarded out."""
    names: dict[tuple[str, ...], set[str]] = {}
    words: dict[str, set[str]] = {}
    for path in a.gaz:
        src = Path(path).parent.name
        sents = read_file(path).sentences
        corpus = TextCorpus([[norm(t) for t in s.tokens] for s in sents], [(path, s.line) for s in sents])
        dropped = {k for k, _ in find_overlaps(corpus, tests, 6)}
        for k, s in enumerate(sents):
            if k in dropped:
                continue
            for st, en, ty in spans_from_tags(s.tags):
                key = tuple(corpus.sentences[k][st:en])
                if len(key) <= a.gazmax:
                    names.setdefault(key, set()).add(f"{src}:{ty}")
                for w in key:
                    words.setdefault(w, set()).add(f"{src}:{ty}")
    return names, words


def own_gazetteers(words: list[list[str]], tags: list[list[str]], gazmax: int) -> tuple[dict, list[dict]]:
    """The training split's names: all of them (for tagging) and, per fold, those of the other folds (for training)."""
    every: dict[tuple[str, ...], set[str]] = {}
    folds: list[dict[tuple[str, ...], set[str]]] = [{} for _ in range(FOLDS)]
    for i, (w, t) in enumerate(zip(words, tags, strict=True)):
        for st, en, ty in spans_from_tags(t):
            if en - st <= gazmax:
                every.setdefault(tuple(w[st:en]), set()).add(ty)
                for k in range(FOLDS):
                    if k != i % FOLDS:
                        folds[k].setdefault(tuple(w[st:en]), set()).add(ty)
    return every, folds


def mark(words: list[str], feats: list[dict], table: dict, prefix: str, gazmax: int) -> None:
    for i in range(len(words)):
        for n in range(1, min(gazmax, len(words) - i) + 1):
            for ty in sorted(table.get(tuple(words[i:i + n]), ())):
                feats[i][f"{prefix}B:{ty}"] = ""
                for j in range(i + 1, i + n):
                    feats[j][f"{prefix}I:{ty}"] = ""


def main() -> None:
    import pycrfsuite

    a = parse_args()
    cfg = load(RunConfig, a.config, {}, [f"data={a.data}", f"seed={a.seed}"])
    if a.noclusters:
        cfg.cluster_sizes = []
    work = Path(tempfile.mkdtemp(prefix="crf-ablation-"))
    data = load_training_data(cfg, None, work)
    norm = data.normalizer.normalize_token
    tests = test_sentences(cfg, data.normalizer)
    clusters, _ = word_clusters(cfg, data.train_words, data.valid_words, data.normalizer, work, tests)
    spec = FeatureSpec(window=cfg.crf_window, affix=cfg.crf_affix, clusters=clusters)
    names = data.names
    test = load_dataset_dir(Path(a.data))["test"]
    test_words = [[norm(t) for t in s] for s in test["tokens"]]
    test_gold = [[names[i] for i in r] for r in test["ner_tags"]]
    train_tags = [[names[i] for i in r] for r in data.train["ner_tags"]]
    valid_tags = [[names[i] for i in r] for r in data.valid["ner_tags"]]
    gaz, gaz_words = external_gazetteer(a, norm, tests) if a.gaz else ({}, {})
    own_all, own_folds = own_gazetteers(data.train_words, train_tags, a.gazmax) if a.owngaz else ({}, [])

    def feats(words: list[str], own: dict | None = None) -> list[dict]:
        fs = sentence_features(words, spec)
        if a.owngaz:
            mark(words, fs, own if own is not None else own_all, "o", a.gazmax)
        mark(words, fs, gaz, "g", a.gazmax)
        for i, w in enumerate(words if a.gazword else ()):
            for ty in sorted(gaz_words.get(w, ())):
                fs[i][f"gw:{ty}"] = ""
                if a.nbgw and i > 0:
                    fs[i - 1][f"+1gw:{ty}"] = ""
                if a.nbgw and i + 1 < len(words):
                    fs[i + 1][f"-1gw:{ty}"] = ""
        return fs

    train = list(zip(data.train_words, train_tags, strict=True))
    if a.tv:
        train += list(zip(data.valid_words, valid_tags, strict=True))
    t0 = time.time()
    trainer = pycrfsuite.Trainer(verbose=False)
    for i, (w, t) in enumerate(train):
        own = own_folds[i % FOLDS] if a.owngaz and i < len(data.train_words) else None
        trainer.append(feats(w, own), t)
    trainer.set_params({"c1": a.c1, "c2": a.c2, "max_iterations": a.iters, "feature.possible_transitions": True})
    model = str(work / "model.crfsuite")
    trainer.train(model)
    tagger = pycrfsuite.Tagger()
    tagger.open(model)
    out = {"name": a.name, "args": vars(a), "fit_s": round(time.time() - t0)}
    for split, words, gold in (("test", test_words, test_gold), ("validation", data.valid_words, valid_tags)):
        out[split] = round(100 * metrics.score(gold, [tagger.tag(feats(w)) for w in words])["default"]["f1"], 2)
    print(json.dumps(out, ensure_ascii=False))
    Path(a.log).parent.mkdir(parents=True, exist_ok=True)
    with open(a.log, "a", encoding="utf-8") as f:
        f.write(json.dumps(out, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
