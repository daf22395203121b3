"""Real-shaped Hub checkpoints, offline: train by hub id from a pickle-only base, and evaluate or use published
NER checkpoints whatever their label convention (``B_DAT``, ``B-pers``, ``B-person``, BIOES, ``LABEL_N``).

A throwaway HF cache (``HF_HOME``) is laid out like the Hub's (``refs/main`` + ``snapshots/<sha>/``); with
``HF_HUB_OFFLINE=1`` every ``from_pretrained("ORG/NAME")`` resolves it. The NER checkpoints are one random
reference classifier renamed, reordered and re-saved as each publisher did, so every one of them must give
exactly the reference's entities once its labels are canonicalised.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from helpers.hub import (
    CANONICAL,
    add_repo,
    base_checkpoint,
    bioes_checkpoint,
    convention_checkpoint,
    evil_checkpoint,
    ner_checkpoint,
    small_vocab,
)
from helpers.train import run_cli, small_dataset, tiny_config
from parsner.data.wordtok import tokenize_words
from parsner.labels import first_invalid_transition
from parsner.paths import parsbert_v1_tokenizer_dir

TEXTS = [
    "علی رضایی رئیس دانشگاه تهران روز دوشنبه در مشهد گفت کتاب‌ها و دانشجویان اهمیت دارند.",
    "سازمان ملل متحد در نیویورک اعلام کرد که ۳۵ درصد کمک‌ها به ایران و عراق می‌رسد؛ خبرگزاری ایرنا 2023",
    "وزارت امور خارجه دیروز گفت مريم احمدی به کرمان رفت و با بانک مرکزی دیدار کرد.",
]

#: hub id -> (convention, weights format); each is a published checkpoint's naming, see helpers.hub.
NER_REPOS = {
    "HooshvareLab/bert-base-parsbert-peymaner-uncased": ("peyma", "bin"),
    "HooshvareLab/bert-fa-base-uncased-ner-arman": ("arman", "bin"),
    "HooshvareLab/bert-base-parsbert-ner-uncased": ("long", "bin"),
}
BASE_ID = "HooshvareLab/bert-fa-base-uncased"


def _reference(path: Path) -> Path:
    """A random tiny classifier (labels CANONICAL) saved like a run, with the ParsBERT normaliser."""
    import torch

    from parsner.data.normalize import PersianNormalizer
    from parsner.inference.standins import build_tiny_model, build_tiny_tokenizer

    words = [w.text for t in TEXTS for w in tokenize_words(t)]
    tok = build_tiny_tokenizer([words] * 3, vocab_size=300)
    torch.manual_seed(3)
    model = build_tiny_model(len(tok), CANONICAL, pad_token_id=tok.pad_token_id, layers=1, hidden=32, heads=2,
                             intermediate=64, max_positions=128)
    path.mkdir(parents=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    PersianNormalizer().save(path)
    return path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    """``(HF_HOME, reference run dir)``; HF_HOME is set for this module's in-process loads."""
    root = tmp_path_factory.mktemp("hub")
    home = root / "hf"
    ref = _reference(root / "reference")
    vocab = parsbert_v1_tokenizer_dir() / "vocab.txt"
    if not vocab.is_file():  # ParsBERT v1's real vocabulary where the shared folder is present
        vocab = small_vocab([w.text for t in TEXTS for w in tokenize_words(t)])
    base = base_checkpoint(vocab)
    add_repo(home, BASE_ID, base)
    for repo, (conv, _) in NER_REPOS.items():
        add_repo(home, repo, convention_checkpoint(ref, conv))
    add_repo(home, "hezarai/bert-fa-ner-arman",
             ner_checkpoint(ref, [c.replace("PER", "pers").lower() if c != "O" else c for c in CANONICAL],
                            list(range(len(CANONICAL))), weights="safetensors"))
    add_repo(home, "dadmatech/ner-bioes", bioes_checkpoint(ref))
    add_repo(home, "someone/unnamed-ner",
             ner_checkpoint(ref, [f"LABEL_{i}" for i in range(len(CANONICAL))], list(range(len(CANONICAL)))))
    marker = root / "PWNED"
    add_repo(home, "evil/ner", evil_checkpoint(convention_checkpoint(ref, "peyma"), marker))
    add_repo(home, "evil/base", evil_checkpoint(base, marker))
    add_repo(home, "broken/no-weights", {"config.json": base["config.json"], "vocab.txt": base["vocab.txt"]})
    add_repo(home, "broken/no-tokenizer", {k: v for k, v in base.items() if k != "vocab.txt"})
    cfg = json.loads(base["config.json"])
    add_repo(home, "broken/arch", {**base, "config.json": json.dumps({**cfg, "model_type": "no-such-bert"})})
    old = os.environ.get("HF_HOME")
    os.environ["HF_HOME"] = str(home)
    _reset_hf_constants(home)
    yield home, ref, marker
    if old is None:
        os.environ.pop("HF_HOME", None)
    else:
        os.environ["HF_HOME"] = old
    _reset_hf_constants(Path(old) if old else None)


def _reset_hf_constants(home: Path | None) -> None:
    """huggingface_hub reads HF_HOME once at import; point its cache constants at ``home`` for this module."""
    from huggingface_hub import constants

    default = Path(os.path.expanduser("~/.cache/huggingface"))
    cache = str((home or default) / "hub")
    constants.HF_HUB_CACHE = cache
    constants.HUGGINGFACE_HUB_CACHE = cache


def _env(home: Path) -> dict[str, str]:
    return {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub")}


def _entities(tagger) -> list[list[tuple[str, int, int]]]:
    return [[(e["label"], e["start"], e["end"]) for e in ents] for ents in tagger(TEXTS)]


@pytest.fixture(scope="module")
def reference_tagger(hub):
    from parsner.inference.tagger import Tagger

    return Tagger.from_pretrained(hub[1], device="cpu")


@pytest.mark.parametrize("repo", [*NER_REPOS, "hezarai/bert-fa-ner-arman"])
def test_every_convention_gives_the_reference_entities_with_canonical_labels(hub, reference_tagger, repo):
    from parsner.inference.tagger import Tagger

    tagger = Tagger.from_pretrained(repo, device="cpu", normalizer="parsbert")
    assert tagger.labels == ["LOC", "ORG", "PER"]
    got = _entities(tagger)
    assert got == _entities(reference_tagger)
    assert sum(map(len, got)) > 0  # the random reference does predict entities here
    assert all(label in ("LOC", "ORG", "PER") for doc in got for label, _, _ in doc)


def test_hub_parsbert_ids_get_the_parsbert_normaliser_by_default(hub, reference_tagger):
    from parsner.inference.tagger import Tagger

    tagger = Tagger.from_pretrained("HooshvareLab/bert-base-parsbert-peymaner-uncased", device="cpu")
    assert tagger.meta["normalizer_used"] == "parsbert (default for this hub id)"
    assert _entities(tagger) == _entities(reference_tagger)
    plain = Tagger.from_pretrained("HooshvareLab/bert-base-parsbert-peymaner-uncased", device="cpu",
                                   normalizer="none")
    assert plain.normalizer is None and plain.meta["normalizer_used"].startswith("none")


def test_bioes_head_is_decoded_to_valid_iob2(hub, reference_tagger):
    from parsner.inference.tagger import Tagger

    plain = Tagger.from_pretrained("dadmatech/ner-bioes", device="cpu", normalizer="parsbert", constrained=False)
    assert plain.model_labels.scheme == "BIOES" and plain.labels == ["LOC", "ORG", "PER"]
    ref = Tagger.from_pretrained(hub[1], device="cpu", constrained=False)
    assert _entities(plain) == _entities(ref)  # E-/S- rows are never predicted: same argmax tags
    tagger = Tagger.from_pretrained("dadmatech/ner-bioes", device="cpu", normalizer="parsbert")
    docs = tagger.tag_documents(TEXTS)
    for doc in docs:
        assert set(doc.tags) <= set(CANONICAL)
        for s, e in doc.sentence_word_ranges:
            assert first_invalid_transition(doc.tags[s:e]) is None


def test_unnamed_labels_need_a_label_map(hub, reference_tagger, tmp_path):
    from parsner.errors import ConfigError
    from parsner.inference.tagger import Tagger

    with pytest.raises(ConfigError, match="--label-map"):
        Tagger.from_pretrained("someone/unnamed-ner", device="cpu")
    lmap = tmp_path / "labels.yaml"
    lmap.write_text("\n".join(f"LABEL_{i}: {name}" for i, name in enumerate(CANONICAL)), encoding="utf-8")
    tagger = Tagger.from_pretrained("someone/unnamed-ner", device="cpu", normalizer="parsbert", label_map=lmap)
    assert _entities(tagger) == _entities(reference_tagger)


def test_type_label_map_applies_to_model_labels(hub):
    from parsner.inference.tagger import Tagger

    kw = {"device": "cpu", "normalizer": "parsbert", "constrained": False}  # per-word argmax: exact comparison
    tagger = Tagger.from_pretrained("HooshvareLab/bert-fa-base-uncased-ner-arman", label_map={"ORG": "LOC", "PER": "O"},
                                    **kw)
    assert tagger.labels == ["LOC"]
    ref = Tagger.from_pretrained(hub[1], **kw)
    mapped = {"O": "O", "B-LOC": "B-LOC", "I-LOC": "I-LOC", "B-ORG": "B-LOC", "I-ORG": "I-LOC", "B-PER": "O",
              "I-PER": "O"}
    want = [[mapped[t] for t in doc.tags] for doc in ref.tag_documents(TEXTS)]
    assert [doc.tags for doc in tagger.tag_documents(TEXTS)] == want
    assert any("B-LOC" in tags for tags in want)


@pytest.mark.slow
def test_pickle_only_base_model_trains_by_hub_id(hub, tmp_path):
    home = hub[0]
    data = small_dataset(tmp_path / "data", n_train=24, n_valid=8)
    cfg = tiny_config(tmp_path / "run.yaml", data, model=BASE_ID, epochs=1, normalizer="parsbert")
    out = tmp_path / "run"
    proc = run_cli(["train", "--config", str(cfg), "--out", str(out)], env_extra=_env(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    meta = json.loads((out / "parsner.json").read_text(encoding="utf-8"))
    assert meta["base_model"] == BASE_ID and meta["stand_in"] is False
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert set(config["id2label"].values()) == set(CANONICAL)


def test_finetuning_a_peyma_style_checkpoint_keeps_its_head_under_canonical_names(hub, tmp_path):
    from parsner.inference.modeling import existing_label_names, load_model

    repo = "HooshvareLab/bert-base-parsbert-peymaner-uncased"
    names = existing_label_names(repo)
    assert sorted(names) == sorted(CANONICAL)
    model = load_model(repo, names)
    assert list(model.config.id2label.values()) == names  # B_PER is saved as B-PER


@pytest.mark.slow
def test_eval_and_predict_by_hub_id_write_canonical_tags(hub, tmp_path):
    home = hub[0]
    data = small_dataset(tmp_path / "data", n_train=8, n_valid=12)
    repo = "HooshvareLab/bert-base-parsbert-peymaner-uncased"
    proc = run_cli(["eval", "--model", repo, "--data", str(data), "--split", "validation",
                    "--out", str(tmp_path / "ev"), "--bootstrap", "0", "--no-plots", "--quiet"], env_extra=_env(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    preds = (tmp_path / "ev" / "predictions.conll").read_text(encoding="utf-8")
    tags = {line.split("\t")[2] for line in preds.splitlines() if line}
    assert tags <= set(CANONICAL) and tags - {"O"}
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["source"]["normalizer"] == "parsbert (default for this hub id)"
    assert set(metrics["strict"]["per_type"]) <= {"LOC", "ORG", "PER"}
    proc = run_cli(["predict", "--model", repo, "--format", "jsonl", TEXTS[0]], env_extra=_env(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ents = json.loads(proc.stdout.splitlines()[0])["entities"]
    assert ents and {e["label"] for e in ents} <= {"LOC", "ORG", "PER"}


def test_eval_with_other_types_scores_all_and_shared_types(hub, tmp_path):
    """A PER/LOC/ORG model on data with a type it lacks: both scores, labelled; a label map applies first."""
    from helpers.train import save_dataset
    from parsner.evaluation.evaluate import evaluate_model

    rows = [(["دیروز", "علی", "به", "تهران", "رفت", "۱۴۰۰"], ["O", "B-PER", "O", "B-LOC", "O", "B-DAT"])] * 6
    labels = ["O", "B-DAT", "I-DAT", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    data = save_dataset(tmp_path / "data", {"test": rows}, labels=labels)
    repo = "HooshvareLab/bert-fa-base-uncased-ner-arman"
    res = evaluate_model(repo, data, "test", n_bootstrap=0, device="cpu", label_map={"ORG": "O"})
    types = res.metrics["source"]["types"]
    assert types == {"shared": ["LOC", "PER"], "model_only": [], "data_only": ["DAT"]}
    shared = res.metrics["shared_types"]
    assert shared["types"] == ["LOC", "PER"]
    assert shared["default"]["n_gold"] == 12 and res.metrics["default"]["n_gold"] == 18
    assert "shared types only" in res.report and "all types" in res.report
    res = evaluate_model(repo, data, "test", n_bootstrap=0, device="cpu")
    assert res.metrics["source"]["types"]["model_only"] == ["ORG"]


@pytest.mark.slow
def test_benchmark_eval_only_scores_a_checkpoint_beside_its_published_number(hub, tmp_path):
    home = hub[0]
    repo = "HooshvareLab/bert-base-parsbert-peymaner-uncased"
    proc = run_cli(["benchmark", "sample", "--model", repo, "--eval-only", "--out", str(tmp_path / "b"),
                    "--bootstrap", "0"], env_extra=_env(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "b" / "results.json").read_text(encoding="utf-8"))
    assert results["eval_only"] is True and len(results["runs"]) == 1
    assert not (tmp_path / "b" / "runs" / "main" / "config.json").exists()  # nothing was trained
    assert "checkpoint, not retrained" in proc.stdout


def test_benchmark_eval_only_marks_the_published_row(tmp_path):
    from parsner.evaluation.benchmarks import load_baselines, render_benchmark_md

    run = {"run": "main", "fold": None, "seed": None, "default": {"f1": 0.5}, "strict": {"f1": 0.4}}
    repo = "HooshvareLab/bert-base-parsbert-peymaner-uncased"
    md = render_benchmark_md("peyma", [run], load_baselines(), model=repo, stand_in=None, command="x", when="d",
                             eval_only=True)
    line = next(ln for ln in md.splitlines() if "this checkpoint's published number" in ln)
    assert "93.10" in line
    md = render_benchmark_md("arman-fold1", [run], load_baselines(),
                             model="HooshvareLab/bert-fa-base-uncased-ner-arman", stand_in=None, command="x",
                             when="d", eval_only=True)
    assert "⚠ LEAKED: **ParsNER" in md


@pytest.mark.shared
@pytest.mark.slow
def test_benchmark_eval_only_on_peyma(hub, tmp_path, shared_data):
    proc = run_cli(["benchmark", "peyma", "--model", "HooshvareLab/bert-base-parsbert-peymaner-uncased",
                    "--eval-only", "--out", str(tmp_path / "b"), "--bootstrap", "0",
                    "--data-dir", str(shared_data)], env_extra=_env(hub[0]), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "this checkpoint's published number" in proc.stdout and "93.10" in proc.stdout
    metrics = json.loads((tmp_path / "b" / "runs" / "main" / "eval-test" / "metrics.json").read_text("utf-8"))
    assert metrics["source"]["types"]["data_only"] == ["DAT", "MON", "PCT", "TIM"]
    assert metrics["shared_types"]["types"] == ["LOC", "ORG", "PER"]


# --------------------------------------------------------------------------- errors that tell the truth


def _fails(args: list[str], home: Path, match: str) -> str:
    proc = run_cli(args, env_extra=_env(home))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    assert match in proc.stderr, proc.stderr
    return proc.stderr


@pytest.mark.slow
def test_a_malicious_pickle_is_refused_and_never_runs(hub, tmp_path):
    home, _, marker = hub
    err = _fails(["predict", "--model", "evil/ner", "some text"], home, "refused")
    # Python 3.13 pickles open() as _io.open (io.open before)
    assert "restricted unpickler" in err and re.search(r"it asks for _?io\.open\b", err), err
    data = small_dataset(tmp_path / "data", n_train=8, n_valid=4)
    cfg = tiny_config(tmp_path / "run.yaml", data, model="evil/base", epochs=1)
    _fails(["train", "--config", str(cfg), "--out", str(tmp_path / "run")], home, "refused")
    assert not marker.exists()
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_missing_pieces_are_named(hub):
    home = hub[0]
    _fails(["predict", "--model", "broken/no-weights", "x"], home, "no weights file")
    _fails(["predict", "--model", "broken/no-tokenizer", "x"], home, "no tokenizer files")
    _fails(["predict", "--model", "broken/arch", "x"], home, "unknown architecture")


def test_an_uncached_id_still_fails_fast_with_instructions(hub):
    err = _fails(["predict", "--model", "HooshvareLab/not-in-the-cache", "x"], hub[0], "not available offline")
    assert "hf download HooshvareLab/not-in-the-cache" in err
    assert "in the local Hugging Face cache" in err
