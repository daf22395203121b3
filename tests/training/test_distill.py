"""parsner distill on tiny models: the loss, students of every kind, the run directory everywhere, resume, guards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.train import LABELS, dataset_with_test, make_sentences, run_cli

TEST_SENTENCE = ["مریم", "احمدی", "دیروز", "با", "بانک", "مرکزی", "دیدار", "کرد"]
FAST = ["--set", "progress=false", "--set", "num_threads=1", "--set", "batch_size=8", "--set", "logging_steps=1",
        "--set", "learning_rate=5e-3", "--set", "tiny_hidden=32", "--set", "tiny_intermediate=64",
        "--set", "tiny_vocab_size=400", "--set", "early_stopping_patience=0"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("distill")


@pytest.fixture(scope="module")
def data(work) -> Path:
    return dataset_with_test(work / "data", TEST_SENTENCE)


@pytest.fixture(scope="module")
def unlabelled(work) -> Path:
    path = work / "news.txt"
    path.write_text("\n".join(" ".join(t) for t, _ in make_sentences(40, 9)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def teacher(work, data) -> Path:
    out = work / "teacher"
    res = run_cli(["train", "--model", "tiny:2", "--data", str(data), "--out", str(out), "--epochs", "3",
                   "--set", "tiny_hidden=32", "--set", "tiny_intermediate=64", "--set", "tiny_vocab_size=400",
                   "--set", "learning_rate=5e-3", "--set", "batch_size=8", "--set", "progress=false",
                   "--set", "num_threads=1", "--set", "sparse_embeddings=false"])
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def distill_args(teacher: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["distill", "--teacher", str(teacher), "--student", "tiny:1", "--data", str(data), "--out", str(out),
            "--epochs", "2", *FAST, *extra]


@pytest.fixture(scope="module")
def student(work, teacher, data, unlabelled) -> Path:
    out = work / "student"
    res = run_cli([*distill_args(teacher, data, out), "--unlabelled", str(unlabelled)])
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_loss_is_zero_when_student_equals_teacher():
    import torch

    from parsner.training.distill import distillation_loss

    torch.manual_seed(0)
    logits = torch.randn(12, 7) * 3
    gold = torch.full((12,), -100)
    loss, kl, ce = distillation_loss(logits, logits.clone(), gold, temperature=2.0, alpha=1.0)
    assert float(kl) == pytest.approx(0.0, abs=1e-6) and float(loss) == pytest.approx(0.0, abs=1e-6)
    assert float(ce) == 0.0  # no gold tags: no gold term
    other = logits + torch.randn(12, 7)
    _, kl2, _ = distillation_loss(other, logits, gold, temperature=2.0, alpha=1.0)
    assert float(kl2) > 0.01
    gold[:4] = torch.tensor([0, 1, 2, 3])
    loss3, kl3, ce3 = distillation_loss(logits, logits, gold, temperature=2.0, alpha=0.5)
    assert float(kl3) == pytest.approx(0.0, abs=1e-6) and float(loss3) == pytest.approx(0.5 * float(ce3))


@pytest.mark.slow
def test_loss_of_a_full_teacher_copy_is_zero_on_real_batches(teacher, data):
    """The student `teacher` (all layers) in eval mode reproduces the teacher's targets exactly."""
    import torch

    from parsner.data import align
    from parsner.data.dataset import load_dataset_dir
    from parsner.inference.modeling import load_for_inference
    from parsner.training.distill import DistillConfig, WordTargets, build_student, teacher_word_logits

    model, tok, norm, _ = load_for_inference(str(teacher), device="cpu")
    words = [[norm.normalize_token(t) for t in s] for s in load_dataset_dir(data)["train"]["tokens"]][:20]
    t_logits = teacher_word_logits(model, tok, words, max_length=64, stride=16)
    n_words = sum(len(s) for s in words)
    assert t_logits.shape == (n_words, len(LABELS))
    stu, stok, desc = build_student(DistillConfig(student="teacher"), model, tok, list(LABELS), words)
    assert stok is tok and "2 of 2" in desc
    stu.eval()
    targets = WordTargets(t_logits, [-100] * n_words, temperature=2.0, alpha=1.0)
    starts = [sum(len(s) for s in words[:i]) for i in range(len(words))]
    enc = align.encode_words(words, tok, [[starts[i] + j for j in range(len(s))] for i, s in enumerate(words)],
                             max_length=64, stride=16)
    for w in enc.windows[:5]:
        inputs = {"input_ids": torch.tensor([w.input_ids]), "attention_mask": torch.ones(1, len(w.input_ids)),
                  "word_index": torch.tensor([w.labels])}
        with torch.no_grad():
            loss, _ = targets.loss(stu, inputs)
        assert float(loss) == pytest.approx(0.0, abs=1e-5)
    half, _, desc = build_student(DistillConfig(student="teacher:1"), model, tok, list(LABELS), words)
    assert half.config.num_hidden_layers == 1 and len(half.bert.encoder.layer) == 1


@pytest.mark.slow
def test_student_run_loads_everywhere(student, teacher, data, work):
    names = {p.name for p in student.iterdir()}
    for f in ("model.safetensors", "config.json", "tokenizer.json", "normalizer.json", "parsner.json",
              "run_config.yaml", "train_log.jsonl", "metrics.json", "README.md"):
        assert f in names, f
    meta = json.loads((student / "parsner.json").read_text("utf-8"))
    assert meta["labels"] == LABELS and meta["distilled_from"] == str(teacher)
    assert meta["license"]["level"] == "unknown"  # a synthetic dataset without build.json: nobody stated terms
    assert "license: other" in (student / "README.md").read_text("utf-8")
    assert (student / "normalizer.json").read_text("utf-8") == (teacher / "normalizer.json").read_text("utf-8")
    info = json.loads((student / "metrics.json").read_text("utf-8"))
    assert info["unlabelled_sentences"] == 40 and info["labelled_sentences"] == 48
    # the student's scores are calibrated on validation, as a trained run's (or say why not)
    cal = info["calibration"]
    assert (cal["file"] == "calibration.json") == (student / "calibration.json").is_file()
    assert cal["file"] or cal["why"].startswith("entity scores are raw")

    from transformers import AutoModelForTokenClassification, pipeline

    from parsner import Tagger

    assert AutoModelForTokenClassification.from_pretrained(str(student)).config.num_hidden_layers == 1
    text = "مریم احمدی دیروز به تهران رفت"
    ents = Tagger.from_pretrained(str(student))(text)
    assert all(text[e["start"] : e["end"]] == e["text"] for e in ents)
    pipe = pipeline("token-classification", model=str(student), aggregation_strategy="first", device="cpu")
    assert isinstance(pipe(text), list)
    res = run_cli(["eval", "--model", str(student), "--data", str(data), "--split", "validation",
                   "--out", str(work / "eval"), "--no-plots", "--bootstrap", "50"])
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((work / "eval" / "metrics.json").read_text("utf-8"))
    res = run_cli(["predict", "--model", str(student), "--format", "conll", text])
    assert res.returncode == 0 and "تهران" in res.stdout


@pytest.mark.slow
def test_resume_after_sigterm_gives_identical_weights(student, teacher, data, unlabelled, work):
    from safetensors.torch import load_file

    out = work / "interrupted"
    args = [*distill_args(teacher, data, out), "--unlabelled", str(unlabelled)]
    res = run_cli(args, env_extra={"PARSNER_FAULT_INJECT": "SIGTERM:5"})
    assert res.returncode == 143, res.stderr[-3000:]
    assert not out.exists()
    res = run_cli([*args, "--resume"])
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = load_file(str(student / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for k in a:
        assert (a[k] == b[k]).all(), k


@pytest.mark.slow
def test_unlabelled_text_with_a_test_sentence_is_refused(teacher, data, work):
    leaky = work / "leaky.txt"
    leaky.write_text(" ".join(TEST_SENTENCE) + "\nعلی به تهران رفت\n", encoding="utf-8")
    out = work / "leaky"
    res = run_cli([*distill_args(teacher, data, out), "--unlabelled", str(leaky)])
    assert res.returncode == 2 and "contain a test sentence" in res.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--student", "teacher:9"], "1..2"),
        (["--set", "alpha=1.5"], "alpha"),
        (["--unlabelled", "/nonexistent.txt"], "does not exist"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_message(extra, needle, teacher, data, tmp_path):
    res = run_cli([*distill_args(teacher, data, tmp_path / "o"), *extra])
    assert res.returncode == 2 and needle in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_teacher_that_is_not_a_run_is_refused(data, tmp_path):
    res = run_cli(distill_args(tmp_path, data, tmp_path / "o"))
    assert res.returncode == 2 and "config.json" in res.stderr
