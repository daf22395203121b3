"""Knowledge distillation of a fine-tuned tagger into a smaller student: ``distill(cfg) -> DistillResult``.

* **Per-word targets.** The teacher tags every word once (eval mode, its own tokenizer, windows and
  normaliser); its logits at each word's first sub-token are kept. The student, whatever its tokenizer, is
  trained on the same words: ``alpha * T² * KL(teacher_T || student_T) + (1 - alpha) * CE(gold)`` per word
  (``T`` = ``temperature``), where words without gold tags (``--unlabelled`` text) have the KL term only.
  Because targets are per word, the student's tokenizer need not be the teacher's.
* **Students**: ``tiny[:L]`` (WordPiece vocabulary from the training words), ``parsbert-standin[:L]``, a hub
  id or local base, or ``teacher:K`` (the teacher's tokenizer, embeddings and first ``K`` layers; ``teacher``
  alone: all of them).
* **Labels and normaliser** are the teacher's; the dataset's labels must be among them.
* **Output** is an ordinary run directory (the files of ``parsner train``), so ``Tagger``, ``pipeline``,
  ``parsner eval``/``predict``/``export`` load it; validation strict F1 selects the checkpoint, as in training.
  Run directory handling, resume and signals are every job's (:mod:`parsner.training.jobs`).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.atomic import file_sha256
from parsner.data.pretext import OverlapMode, TextFormat
from parsner.errors import ConfigError
from parsner.training import jobs
from parsner.training.checkpoints import check_checkpoint_tokenizer, check_saved_files, job_work_files
from parsner.training.config import JobRuntime, LrScheduler, SelectionMetric, TinySizes, dump_yaml, option

log = logging.getLogger(__name__)


@dataclass
class DistillConfig(JobRuntime, TinySizes):
    """Everything that defines a distillation run (YAML keys of ``training/distill-*.yaml``)."""

    teacher: str | None = option(None, help="the teacher: a trained run directory (or any token classifier)")
    student: str = option("tiny:2", help="'tiny[:L]', 'parsbert-standin[:L]', a hub id, a local base, or "
                                         "'teacher[:K]' (the teacher's first K layers)")
    out: str | None = option(None, help="output directory (default: models/<run_name>)")
    run_name: str | None = option(None, help="default: the config file's stem, else 'distilled'")
    data: str | None = option(None, help="dataset from `parsner data build` (train: gold and teacher; validation)")
    unlabelled: list[str] = option(default_factory=list, help="text the student learns from the teacher alone")
    text_format: TextFormat = option("auto", help="how to read each --unlabelled input")
    test_overlap: OverlapMode = option("refuse", help="unlabelled text holding a test sentence of the dataset: "
                                                      "refuse, report or drop it")
    overlap_min_words: int = option(6, help="words a test sentence needs to count as found in the text", gt=0)
    seed: int = option(42, help="seed of everything random in the run", ge=0, lt=2**32)
    epochs: float = option(3.0, help="training epochs (fractions allowed)", gt=0)
    max_train_samples: int | None = option(None, help="use the first N gold sentences", gt=0)
    max_unlabelled_samples: int | None = option(None, help="use the first N unlabelled sentences", gt=0)
    max_eval_samples: int | None = option(None, help="validate on the first N sentences", gt=0)
    validation_fraction: float = option(0.0, help="carve a validation split off train when the dataset has none",
                                        ge=0, lt=1)
    temperature: float = option(2.0, help="softmax temperature of both models in the distillation term", gt=0)
    alpha: float = option(0.7, help="weight of the distillation term (1 - alpha: gold cross-entropy)", ge=0, le=1)
    learning_rate: float = option(5e-5, help="peak learning rate of AdamW", gt=0)
    batch_size: int = option(16, help="windows per step", gt=0)
    teacher_batch_size: int = option(64, help="windows per teacher forward pass", gt=0)
    warmup_ratio: float = option(0.06, help="share of the steps with a rising learning rate", ge=0, lt=1)
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases and LayerNorm)", ge=0)
    max_grad_norm: float = option(1.0, help="gradient clipping norm (0: off)", ge=0)
    lr_scheduler: LrScheduler = option("linear", help="learning-rate schedule after warm-up")
    max_length: int | None = option(None, help="sub-words per window (default: the teacher's)", gt=0)
    stride: int | None = option(None, help="sub-words of overlap between windows (default: the teacher's)", ge=0)
    constrained_decoding: bool = option(True, help="validation tags = most probable VALID sequence")
    selection_metric: SelectionMetric = option("f1_strict", help="validation score that picks the best checkpoint")
    early_stopping_patience: int = option(3, help="validations without improvement before stopping; 0: off", ge=0)

    def check(self, source: str) -> None:
        """What every distillation needs (each field's own rules: :func:`parsner.training.config.check`)."""
        if not self.teacher:
            raise ConfigError("no teacher: give --teacher RUN (a trained run directory)")
        if not self.data:
            raise ConfigError("no dataset: give --data DIR (built by `parsner data build`)")

    @property
    def name(self) -> str:
        return self.run_name or "distilled"

    @property
    def out_dir(self) -> Path:
        return Path(self.out or Path("models") / self.name)


DistillResult = jobs.JobResult


def load_distill_config(path: str | None, overrides: dict[str, Any] | None = None,
                        sets: list[str] | None = None) -> DistillConfig:
    """Defaults <- YAML file <- command-line options <- ``--set`` items, every key checked (parsner.training.config)."""
    from parsner.training import config as config_rules

    return config_rules.load(DistillConfig, path, overrides, sets)


# ----------------------------------------------------------------------------------------- loss


def distillation_loss(student_logits: Any, teacher_logits: Any, gold: Any, temperature: float,
                      alpha: float) -> tuple[Any, Any, Any]:
    """``(loss, kl, ce)`` over words: rows of ``(words, labels)`` logits; ``gold`` -100 where there is none.

    ``kl`` is ``T² * KL(softmax(teacher/T) || softmax(student/T))`` averaged over words (zero when the
    student's logits equal the teacher's); ``ce`` the gold cross-entropy over the words that have gold tags.
    """
    import torch
    import torch.nn.functional as F

    t = float(temperature)
    s_log = F.log_softmax(student_logits.float() / t, dim=-1)
    t_log = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = F.kl_div(s_log, t_log, log_target=True, reduction="sum") / max(1, student_logits.shape[0]) * t * t
    has = gold != -100
    ce = torch.zeros((), device=kl.device)
    if bool(has.any()):
        ce = F.cross_entropy(student_logits[has].float(), gold[has])
    return alpha * kl + (1 - alpha) * ce, kl, ce


class WordTargets:
    """Teacher logits and gold ids for every training word, indexed by a global word number."""

    def __init__(self, teacher_logits: Any, gold: Any, temperature: float, alpha: float) -> None:
        import torch

        self.teacher = torch.as_tensor(teacher_logits, dtype=torch.float32)
        self.gold = torch.as_tensor(gold, dtype=torch.long)
        self.temperature, self.alpha = temperature, alpha

    def loss(self, model: Any, inputs: dict[str, Any]) -> tuple[Any, Any]:
        if "word_index" not in inputs:  # evaluation: the gold cross-entropy and logits for the metrics
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                        labels=inputs["labels"])
            return out.loss, {"loss": out.loss, "logits": out.logits}
        widx = inputs["word_index"]
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
        sel = widx != -100
        words = widx[sel].cpu()
        loss, _, _ = distillation_loss(logits[sel], self.teacher[words].to(logits.device),
                                       self.gold[words].to(logits.device), self.temperature, self.alpha)
        return loss, {"loss": loss}


class PadAnyCollator:
    """Dynamic padding of ``input_ids`` (pad id) and of ``labels``/``word_index`` (-100)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        n, width = len(features), max(len(f["input_ids"]) for f in features)
        batch = {"input_ids": torch.full((n, width), self.pad_id, dtype=torch.long),
                 "attention_mask": torch.zeros((n, width), dtype=torch.long)}
        for key in ("labels", "word_index"):
            if key in features[0]:
                batch[key] = torch.full((n, width), -100, dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            batch["input_ids"][i, :k] = torch.as_tensor(f["input_ids"])
            batch["attention_mask"][i, :k] = 1
            for key in ("labels", "word_index"):
                if key in batch:
                    batch[key][i, :k] = torch.as_tensor(f[key])
        return batch


# ----------------------------------------------------------------------------------------- teacher


def teacher_word_logits(model: Any, tokenizer: Any, sentences: list[list[str]], *, max_length: int, stride: int,
                        batch_size: int = 64) -> Any:
    """``(total words, labels)`` float32 logits: each word's first sub-token in the window that labels it."""
    import numpy as np
    import torch

    from parsner.data import align

    enc = align.encode_words(sentences, tokenizer, None, max_length=max_length, stride=stride)
    starts = np.concatenate([[0], np.cumsum(enc.word_counts)]).astype(np.int64)
    out = np.zeros((int(starts[-1]), model.config.num_labels), dtype=np.float32)
    order = sorted(range(len(enc.windows)), key=lambda k: len(enc.windows[k].input_ids))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            wins = [enc.windows[k] for k in order[b : b + batch_size]]
            width = max(len(w.input_ids) for w in wins)
            ids = torch.full((len(wins), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for i, w in enumerate(wins):
                ids[i, : len(w.input_ids)] = torch.as_tensor(w.input_ids)
                mask[i, : len(w.input_ids)] = 1
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu().numpy()
            for i, w in enumerate(wins):
                rows = starts[w.sentence] + np.asarray(w.labelled_words, dtype=np.int64)
                out[rows] = logits[i, w.label_positions]
    return out


def _teacher_labels(model: Any, teacher: str) -> list[str]:
    from parsner.inference.modeling import model_label_names

    names = model_label_names(model.config)
    if not names:
        raise ConfigError(f"teacher {teacher!r} has no named IOB2 token-classification head")
    if names != [model.config.id2label[i] for i in range(len(names))]:
        raise ConfigError(f"teacher {teacher!r}: its labels are not in parsner's canonical IOB2 form; "
                          "distil a parsner run directory")
    return list(names)


# ----------------------------------------------------------------------------------------- student


def build_student(cfg: DistillConfig, teacher: Any, teacher_tok: Any, labels: list[str],
                  words: list[list[str]]) -> tuple[Any, Any, str]:
    """(student model, tokenizer, description) for ``cfg.student``."""
    import torch

    from parsner.inference import hub, modeling

    torch.manual_seed(cfg.seed)
    spec_text = cfg.student.strip()
    if spec_text == "teacher" or spec_text.startswith("teacher:"):
        n_layers = teacher.config.num_hidden_layers
        raw = spec_text.partition(":")[2] or str(n_layers)
        if not raw.isdigit() or not 1 <= int(raw) <= n_layers:
            raise ConfigError(f"student {spec_text!r}: after 'teacher:' comes 1..{n_layers} (the teacher's layers)")
        student = copy.deepcopy(teacher)
        encoder = getattr(getattr(student, student.base_model_prefix), "encoder", None)
        if encoder is None or not hasattr(encoder, "layer"):
            raise ConfigError(f"student {spec_text!r}: the teacher's architecture has no encoder.layer list")
        encoder.layer = encoder.layer[: int(raw)]
        student.config.num_hidden_layers = int(raw)
        return student, teacher_tok, f"the teacher's first {raw} of {n_layers} layers"
    spec = hub.parse_spec(spec_text)
    tiny = jobs.tiny_options(cfg)
    tok = modeling.load_tokenizer(spec, train_words=words, tiny_options=tiny)
    model = modeling.load_model(spec, labels, tok, tiny_options=tiny, reinit_classifier=True)
    return model, tok, spec.stand_in or spec_text


def _sha_of_model(path: str) -> str | None:
    p = Path(path)
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (p / name).is_file():
            return file_sha256(p / name)
    return None


# ----------------------------------------------------------------------------------------- data


@dataclass
class DistillData:
    words: list[list[str]]  # normalised training words: labelled sentences first, then unlabelled ones
    gold: list[int]  # per word: the teacher's label id, or -100
    labelled: int  # how many of ``words`` have gold tags
    valid_words: list[list[str]]
    valid_gold: list[list[str]]
    valid_ids: list[list[int]]
    sources: list[dict[str, Any]]
    guard: dict[str, Any]
    fingerprint: dict[str, Any]


def load_data(cfg: DistillConfig, labels: list[str], normalize: Any) -> DistillData:
    from parsner.data.pretext import TextCorpus, apply_guard, guard_sentences, read_texts
    from parsner.training.checkpoints import data_fingerprint
    from parsner.training.train import load_splits

    train_ds, valid_ds, names, _ = load_splits(cfg)  # type: ignore[arg-type]
    unknown = sorted(set(names) - set(labels))
    if unknown:
        raise ConfigError(f"the dataset {cfg.data} has labels the teacher does not know: {', '.join(unknown)} "
                          f"(the teacher's: {', '.join(labels)})")
    remap = [labels.index(n) for n in names]
    norm = normalize or (lambda w: w)
    words = [[norm(t) for t in s] for s in train_ds["tokens"]]
    gold = [remap[t] for s in train_ds["ner_tags"] for t in s]
    corpus, report = TextCorpus(), {"mode": cfg.test_overlap, "overlapping_sentences": 0, "guards": []}
    if cfg.unlabelled:
        corpus = read_texts(cfg.unlabelled, normalize, cfg.text_format)
        tests = guard_sentences([cfg.data], normalize)
        report = {**apply_guard(corpus, tests, cfg.test_overlap, cfg.overlap_min_words), "guards": [cfg.data]}
        if cfg.max_unlabelled_samples:
            corpus.sentences = corpus.sentences[: cfg.max_unlabelled_samples]
    valid_words = [[norm(t) for t in s] for s in valid_ds["tokens"]]
    fp = data_fingerprint(cfg, train_ds, valid_ds, names)  # type: ignore[arg-type]
    fp["unlabelled"] = corpus.fingerprint()
    return DistillData(
        words=words + corpus.sentences, gold=gold + [-100] * sum(len(s) for s in corpus.sentences),
        labelled=len(words), valid_words=valid_words,
        valid_gold=[[names[t] for t in s] for s in valid_ds["ner_tags"]],
        valid_ids=[[remap[t] for t in s] for s in valid_ds["ner_tags"]], sources=corpus.sources, guard=report,
        fingerprint=fp,
    )


# ----------------------------------------------------------------------------------------- run


def distill(cfg: DistillConfig, *, resume: bool = False, overwrite: bool = False) -> DistillResult:
    """Distil ``cfg.teacher`` into ``cfg.student``; the run directory is locked for the whole run."""
    teacher_dir = cfg.teacher if cfg.teacher and Path(cfg.teacher).exists() else None
    job = jobs.Job(cfg.out_dir, "run", [cfg.data, *cfg.unlabelled, teacher_dir], "a distillation run")
    return jobs.locked(job, lambda: _distill(cfg, job, resume=resume, overwrite=overwrite), resume=resume,
                       overwrite=overwrite)


def _distill(cfg: DistillConfig, job: jobs.Job, *, resume: bool, overwrite: bool) -> DistillResult:
    import torch

    from parsner.inference import modeling

    t0 = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dirs = jobs.open_run(job, resume=resume, overwrite=overwrite)
    teacher, t_tok, t_norm, t_meta = modeling.load_for_inference(str(cfg.teacher))  # on the GPU if any
    labels = _teacher_labels(teacher, str(cfg.teacher))
    data = load_data(cfg, labels, t_norm.normalize_token if t_norm is not None else None)
    work_files = job_work_files(cfg, {**data.fingerprint, "teacher_weights": _sha_of_model(str(cfg.teacher))})
    if dirs.resume and dirs.work.exists():
        check_saved_files(dirs.work, work_files)
    jobs.start_work(dirs, work_files)
    log.info(f"teacher {cfg.teacher}: tagging {len(data.words)} training sentences ({data.labelled} with gold tags)")
    t_logits = teacher_word_logits(teacher, t_tok, data.words, max_length=int(t_meta["max_length"]),
                                   stride=int(t_meta["stride"]), batch_size=cfg.teacher_batch_size)
    student, s_tok, desc = build_student(cfg, teacher, t_tok, labels, data.words)
    if dirs.resume_from:
        check_checkpoint_tokenizer(dirs.resume_from, s_tok)
    max_length = min(cfg.max_length or int(t_meta["max_length"]), int(s_tok.model_max_length))
    stride = cfg.stride if cfg.stride is not None else min(int(t_meta["stride"]), max_length // 4)
    targets = WordTargets(t_logits, data.gold, cfg.temperature, cfg.alpha)
    with jobs.cpu_float_mode():
        trainer, stopper = _make_trainer(cfg, student, s_tok, labels, data, targets, max_length, stride, dirs)
        output = jobs.fit(trainer, stopper, cfg, dirs)
        metrics = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()}
    meta = {
        "max_length": max_length, "stride": stride, "constrained_decoding": cfg.constrained_decoding,
        "label_scheme": "IOB2", "labels": labels, "label_all_subtokens": False, "first_subtoken_prediction": True,
        "normalizer": t_meta.get("normalizer", "none" if t_norm is None else "parsbert"), "base_model": cfg.student,
        "stand_in": "stand-in" in desc, "stand_in_description": desc if "stand-in" in desc else None,
        "selection_metric": cfg.selection_metric,
        "distilled_from": str(cfg.teacher), "student": desc, "temperature": cfg.temperature, "alpha": cfg.alpha,
        "license": _licence(cfg, t_meta, data.sources),
    }
    info = {"split": "validation", "dataset": str(cfg.data), "selection_metric": cfg.selection_metric,
            "metrics": metrics, "train_runtime_s": float(output.metrics.get("train_runtime", 0.0)),
            "epochs_trained": trainer.state.epoch, "global_step": trainer.state.global_step,
            "best_checkpoint_step": jobs.step_of(trainer.state.best_model_checkpoint), "unlabelled": data.sources,
            "test_guard": data.guard, "labelled_sentences": data.labelled,
            "unlabelled_sentences": len(data.words) - data.labelled}
    _write_run(cfg, trainer.model, s_tok, t_norm, meta, info, dirs, overwrite,
               validation=(data.valid_words, data.valid_gold), device=str(trainer.args.device))
    log.info(f"done in {time.time() - t0:.0f}s: {dirs.final} (validation f1_strict={metrics.get('f1_strict', 0):.4f})")
    return DistillResult(dirs.final, metrics, int(trainer.state.global_step), info["train_runtime_s"],
                         dirs.resume_from)


def _licence(cfg: DistillConfig, t_meta: dict[str, Any], text: list[dict[str, Any]]) -> dict[str, Any]:
    """The student's licence record: the teacher's (what its training data allows carries over through its
    predictions), the dataset's and the unlabelled text's, combined."""
    from parsner.data.licence import base_model_terms, combine, dataset_terms, sources, text_terms

    teacher = sources(t_meta.get("license"), f"the teacher `{cfg.teacher}`",
                      "licence unknown: its parsner.json records no licence of its training data")
    student = base_model_terms(cfg.student) if cfg.student else []
    return combine([*teacher, *dataset_terms(str(cfg.data)), *text_terms(text), *student])


def _make_trainer(cfg: DistillConfig, student: Any, tok: Any, labels: list[str], data: DistillData,
                  targets: WordTargets, max_length: int, stride: int, dirs: jobs.RunDirs) -> tuple[Any, Any]:
    import numpy as np
    from datasets import Dataset

    from parsner.data import align
    from parsner.evaluation import metrics
    from parsner.inference.decoding import decode_words
    from parsner.training.trainer import ParsnerTrainer, keep_log_probs

    starts = np.concatenate([[0], np.cumsum([len(s) for s in data.words])]).tolist()
    index = [list(range(starts[i], starts[i] + len(s))) for i, s in enumerate(data.words)]
    enc = align.encode_words(data.words, tok, index, max_length=max_length, stride=stride)
    enc_valid = align.encode_words(data.valid_words, tok, data.valid_ids, max_length=max_length, stride=stride)
    order = sorted(range(len(enc_valid.windows)), key=lambda k: len(enc_valid.windows[k].input_ids))
    eval_windows = [enc_valid.windows[k] for k in order]
    train_data = Dataset.from_dict({"input_ids": [w.input_ids for w in enc.windows],
                                    "word_index": [w.labels for w in enc.windows]})
    eval_data = Dataset.from_dict({"input_ids": [w.input_ids for w in eval_windows],
                                   "labels": [w.labels for w in eval_windows]})

    def compute_metrics(pred: Any) -> dict[str, float]:
        decoded = decode_words(eval_windows, list(pred.predictions), enc_valid.word_counts, labels,
                               constrained=cfg.constrained_decoding)
        sc = metrics.score(data.valid_gold, [[labels[i] for i in d.label_ids] for d in decoded])
        out = {f"{k}_{m}": float(sc[m][k]) for m in ("strict", "default") for k in ("precision", "recall", "f1")}
        return {**out, "token_accuracy": float(sc["token_accuracy"])}

    args = jobs.training_arguments(cfg, dirs.ckpt_dir, len(enc.windows), eval_strategy="epoch",
                                   save_strategy="epoch", load_best_model_at_end=True,
                                   metric_for_best_model=cfg.selection_metric, greater_is_better=True)
    callbacks, stopper = jobs.job_callbacks(dirs, early_stopping_patience=cfg.early_stopping_patience)
    trainer = ParsnerTrainer(model=student, args=args, train_dataset=train_data, eval_dataset=eval_data,
                             processing_class=tok, data_collator=PadAnyCollator(tok.pad_token_id or 0),
                             compute_metrics=compute_metrics, preprocess_logits_for_metrics=keep_log_probs,
                             callbacks=callbacks, window_lengths=[len(w.input_ids) for w in enc.windows],
                             loss_fn=targets.loss)
    return trainer, stopper


def _write_run(cfg: DistillConfig, model: Any, tok: Any, normalizer: Any, meta: dict[str, Any],
               info: dict[str, Any], dirs: jobs.RunDirs, overwrite: bool, *,
               validation: tuple[list[list[str]], list[list[str]]], device: str | None = None) -> None:
    """The run folder; the student's entity scores calibrated on the validation split, as a trained run's are."""
    from parsner._version import __version__
    from parsner.training.model_card import render_model_card
    from parsner.training.train import calibrate_saved_run

    jobs.check_finite_weights(model, cfg, dirs.work, dirs.ckpt_dir)
    meta = {"parsner_version": __version__, **meta}
    with jobs.publish(dirs, kind="run", overwrite=overwrite) as tmp:
        jobs.save_model(tmp, model, tok, normalizer)
        jobs.write_json(tmp / "parsner.json", meta)
        info["calibration"] = calibrate_saved_run(tmp, *validation, device=device)
        (tmp / "run_config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
        jobs.write_json(tmp / "metrics.json", info)
        card = render_model_card(cfg=cfg, meta=meta, metrics=info, kind="distill")
        (tmp / "README.md").write_text(card, encoding="utf-8")
