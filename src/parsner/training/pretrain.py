"""Continue masked-LM training of a BERT-family base on unlabelled text: ``pretrain(cfg) -> PretrainResult``.

Domain/task-adaptive pre-training: the output is a base model that ``parsner train --model DIR`` fine-tunes.

* **Text** comes from :mod:`parsner.data.pretext` (plain text, JSONL, annotated corpora, built datasets), split
  into words by parsner's own segmentation and normalised with the normaliser fine-tuning will use
  (saved as ``normalizer.json``). Sentences longer than ``max_length`` sub-words are windowed by
  :func:`parsner.data.align.encode_words`, never truncated.
* **Whole-word masking** (as ParsBERT was pre-trained): ``mlm_probability`` of each window's sub-words are
  chosen as whole words; a chosen word is replaced by ``[MASK]`` (80%), by random sub-words (10%) or kept
  (10%), and every sub-word of it is predicted. The choice depends only on (seed, epoch, window), so a run
  resumed from any checkpoint sees exactly the masks of an uninterrupted run.
* **Speed on CPU**: length-grouped batches (:class:`parsner.training.batching.LengthBucketSampler`), dynamic padding,
  and the LM head applied to the masked positions only (a 100k-word head over every position would cost as much
  as the encoder).
* **Run directory, resume and signals** as in :mod:`parsner.training.train` (``OUT.incomplete/`` with checkpoints,
  ``--resume``, SIGINT/SIGTERM save a checkpoint and stop, the run directory is locked, ``OUT`` appears only
  when complete). The test guard of :mod:`parsner.data.pretext` runs before any training.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.data.pretext import OverlapMode, TextFormat
from parsner.errors import ConfigError
from parsner.training.config import (
    JobRuntime,
    LrScheduler,
    NormalizerName,
    TinySizes,
    dump_yaml,
    option,
    resume_safe_keys,
)

KIND = "pretrained-model"
CONFIG_FILE = "pretrain_config.yaml"


@dataclass
class PretrainConfig(JobRuntime, TinySizes):
    """Everything that defines a pre-training run (YAML keys of ``training/pretrain-*.yaml``)."""

    model: str = option("tiny", help="local dir, hub id, 'tiny[:LAYERS]' or 'parsbert-standin[:LAYERS]'")
    text: list[str] = option(default_factory=list, help="text files, JSONL, corpora or built datasets to learn from")
    text_format: TextFormat = option("auto", help="how to read each --text input")
    guard: list[str] = option(default_factory=list, help="datasets whose test split must not be in the text")
    test_overlap: OverlapMode = option("refuse", help="text holding a test sentence: refuse, report or drop it")
    overlap_min_words: int = option(6, help="words a test sentence needs to count as found in the text", gt=0)
    out: str | None = option(None, help="output directory (default: models/<run_name>)")
    run_name: str | None = option(None, help="default: the config file's stem, else 'pretrained'")
    seed: int = option(42, help="seed of the masks and of everything else random", ge=0, lt=2**32)
    epochs: float = option(3.0, help="passes over the text (fractions allowed)", gt=0)
    max_steps: int | None = option(None, help="optimiser steps; overrides epochs", gt=0)
    learning_rate: float = option(5e-5, help="peak learning rate of AdamW", gt=0)
    batch_size: int = option(32, help="windows per step", gt=0)
    warmup_ratio: float = option(0.06, help="share of the steps with a rising learning rate", ge=0, lt=1)
    weight_decay: float = option(0.01, help="AdamW weight decay (not on biases and LayerNorm)", ge=0)
    max_grad_norm: float = option(1.0, help="gradient clipping norm (0: off)", ge=0)
    lr_scheduler: LrScheduler = option("linear", help="learning-rate schedule after warm-up")
    max_length: int = option(128, help="sub-words per window, special tokens included", gt=0)
    stride: int = option(32, help="sub-words of overlap between windows of a long sentence", ge=0)
    mlm_probability: float = option(0.15, help="share of the words (or sub-words) masked", gt=0, lt=1)
    whole_word_masking: bool = option(True, help="mask every sub-word of a chosen word together")
    normalizer: NormalizerName = option("parsbert", help="text preprocessing, the same as for fine-tuning")
    validation_fraction: float = option(0.01, help="held-out sentences for the masked-LM loss", ge=0, lt=0.5)
    save_steps: int = option(500, help="steps between checkpoints", gt=0)

    def check(self, source: str) -> None:
        """Rules between fields (each field's own rules are checked by :func:`parsner.training.config.check`)."""
        if self.stride >= self.max_length - 2:
            raise ConfigError(f"{source}: stride ({self.stride}) must be smaller than max_length - 2 "
                              f"({self.max_length})")

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("models") / (self.run_name or "pretrained")


@dataclass
class PretrainResult:
    out_dir: Path
    metrics: dict[str, Any]
    steps: int
    train_seconds: float
    resumed_from: str | None = None


def load_pretrain_config(path: str | None, overrides: dict[str, Any] | None = None,
                         sets: list[str] | None = None) -> PretrainConfig:
    """Defaults <- YAML file <- command-line options <- ``--set`` items, every key checked (parsner.training.config)."""
    from parsner.training import config as config_rules

    cfg = config_rules.load(PretrainConfig, path, overrides, sets)
    if not cfg.text:
        raise ConfigError("no text: give --text FILE... (or `text:` in the config)")
    return cfg


def make_normalizer(name: str) -> Any:
    if name == "none":
        return None
    from parsner.data.normalize import NormalizerConfig, PersianNormalizer

    return PersianNormalizer(NormalizerConfig.preset(name))


# ----------------------------------------------------------------------------------------- masking


class WholeWordMasker:
    """Masked-LM inputs and labels for one window, decided by (seed, epoch, window) only."""

    def __init__(self, tokenizer: Any, probability: float, seed: int, whole_words: bool = True) -> None:
        import numpy as np

        self.mask_id = tokenizer.mask_token_id
        if self.mask_id is None:
            raise ConfigError("the tokenizer has no mask token: masked-LM training needs one")
        special = set(tokenizer.all_special_ids)
        self.replacements = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
        self.probability = probability
        self.seed = seed
        self.whole_words = whole_words

    def __call__(self, input_ids: list[int], word_ids: list[int | None], epoch: int, index: int) -> dict[str, Any]:
        import numpy as np

        rng = np.random.default_rng([self.seed, epoch, index])
        groups: dict[Any, list[int]] = {}
        for pos, w in enumerate(word_ids):
            if w is not None:
                groups.setdefault(w if self.whole_words else pos, []).append(pos)
        units = list(groups.values())
        n_tokens = sum(len(u) for u in units)
        target = max(1, round(n_tokens * self.probability))
        ids = list(input_ids)
        labels = [-100] * len(ids)
        covered = 0
        for k in rng.permutation(len(units)):
            unit = units[int(k)]
            if covered >= target:
                break
            if covered + len(unit) > target and covered > 0:
                continue
            covered += len(unit)
            action = rng.random()
            for pos in unit:
                labels[pos] = input_ids[pos]
                if action < 0.8:
                    ids[pos] = self.mask_id
                elif action < 0.9:
                    ids[pos] = int(self.replacements[rng.integers(len(self.replacements))])
        return {"input_ids": ids, "labels": labels}


def masked_dataset(windows: list[Any], masker: WholeWordMasker) -> Any:
    """A torch Dataset over windows; index ``epoch * n + i`` gives window ``i`` masked for ``epoch``."""
    import torch

    class MaskedWindows(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(windows)

        def __getitem__(self, k: int) -> dict[str, Any]:
            epoch, i = divmod(int(k), len(windows))
            w = windows[i]
            return masker(w.input_ids, w.word_ids, epoch, i)

    return MaskedWindows()


def epoch_sampler(lengths: list[int], batch_size: int, seed: int) -> Any:
    """Length-grouped batches whose indices also carry the epoch (see :func:`masked_dataset`)."""
    from parsner.training.batching import LengthBucketSampler

    class EpochIndexSampler(LengthBucketSampler):
        def __iter__(self):  # type: ignore[no-untyped-def]
            base = self.epoch * len(self.lengths)
            for i in super().__iter__():
                yield base + i

    return EpochIndexSampler(lengths, batch_size, seed)


def masked_lm_loss(model: Any, inputs: dict[str, Any]) -> Any:
    """Cross-entropy of the masked positions, with the LM head applied to those positions only."""
    import torch.nn.functional as F

    labels = inputs["labels"]
    base = getattr(model, model.base_model_prefix, None)
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if base is None or head is None:  # an architecture we do not know the parts of: the full forward
        return model(**inputs).loss
    hidden = base(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])[0]
    sel = labels != -100
    logits = head(hidden[sel])
    return F.cross_entropy(logits.float(), labels[sel])


# ----------------------------------------------------------------------------------------- model


def load_mlm(spec: Any, tokenizer: Any, cfg: PretrainConfig) -> Any:
    """A masked-LM model: random for the stand-ins, else the checkpoint's weights (its LM head if it has one)."""
    from transformers import AutoConfig, AutoModelForMaskedLM, BertConfig, BertForMaskedLM

    from parsner.inference import modeling

    if spec.kind == "tiny":
        hidden, heads = cfg.tiny_hidden, cfg.tiny_heads
        if hidden % heads:
            raise ConfigError(f"tiny model: hidden size {hidden} is not a multiple of {heads} heads")
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=spec.layers or cfg.tiny_layers,
            num_attention_heads=heads, intermediate_size=cfg.tiny_intermediate,
            max_position_embeddings=modeling.DEFAULT_MAX_LENGTH, pad_token_id=tokenizer.pad_token_id,
        )
        return BertForMaskedLM(config)
    if spec.kind == "parsbert-standin":
        config = AutoConfig.from_pretrained(str(modeling._parsbert_dir()), trust_remote_code=False)
        if spec.layers:
            config.num_hidden_layers = spec.layers
        config.architectures = ["BertForMaskedLM"]
        return AutoModelForMaskedLM.from_config(config, trust_remote_code=False)
    modeling.check_model_files(spec)
    return modeling._from_pretrained(AutoModelForMaskedLM, spec, "weights")


# ----------------------------------------------------------------------------------------- run


def _log(msg: str) -> None:
    import sys

    print(f"parsner pretrain: {msg}", file=sys.stderr, flush=True)


def run_dirs(out: Path) -> tuple[Path, Path]:
    from parsner.training.checkpoints import INCOMPLETE_SUFFIX

    return out, out.parent / f"{out.name}{INCOMPLETE_SUFFIX}"


def check_outputs(final: Path, inputs: list[Any], *, resume: bool, overwrite: bool, kind: str) -> None:
    """The output rule of :mod:`parsner.atomic` for a job with a work folder, before anything is loaded."""
    from parsner.atomic import check_output_dir, output_kind

    _, work = run_dirs(final)
    if final.exists() and not overwrite and final.name not in ("", ".", ".."):
        raise ConfigError(f"{final} {'holds a finished run' if resume else 'already exists'}; "
                          "choose another --out or pass --overwrite")
    check_output_dir(final, kind=kind, overwrite=overwrite, inputs=inputs)
    check_output_dir(work, kind="run-work", overwrite=True, inputs=inputs)
    if work.exists() and output_kind(work) is None and any(work.iterdir()):
        raise ConfigError(f"{work} exists and is not a parsner work folder; remove it yourself or choose another --out")


def prepare_work(work: Path, config_text: str, fingerprint: dict[str, Any], *, resume: bool,
                 overwrite: bool) -> str | None:
    """Check (resume) or start the work folder; returns the checkpoint to resume from."""
    from parsner.atomic import atomic_write_text, write_marker
    from parsner.training.checkpoints import drop_incomplete_checkpoints, last_checkpoint

    ckpt_dir = work / "checkpoints"
    resume_from = None
    if work.exists() and resume:
        saved = {}
        for name, now in (("job_config.yaml", config_text), ("fingerprint.json", json.dumps(fingerprint, indent=1))):
            path = work / name
            if path.is_file() and not _same_document(path.read_text(encoding="utf-8"), now):
                saved[name] = path
        if saved:
            what = " and ".join("the config" if n.endswith("yaml") else "the input text or data" for n in saved)
            raise ConfigError(f"--resume: {what} differ(s) from the interrupted run's in {work}; resume with the "
                              "same settings and inputs, or start over with --overwrite")
        drop_incomplete_checkpoints(ckpt_dir)
        resume_from = last_checkpoint(ckpt_dir)
    elif work.exists() and not overwrite:
        raise ConfigError(f"an interrupted run is in {work}; continue it with --resume or start over with --overwrite")
    if resume_from is None:
        if resume:
            _log("--resume: no checkpoint found, starting from the beginning")
        if work.exists():
            shutil.rmtree(work)
        ckpt_dir.mkdir(parents=True)
        write_marker(work, "run-work")
        atomic_write_text(work / "job_config.yaml", config_text)
        atomic_write_text(work / "fingerprint.json", json.dumps(fingerprint, indent=1))
    return resume_from


def _same_document(saved: str, now: str) -> bool:
    """Equal as data (YAML is a superset of JSON): key order and layout do not matter, so a run saved by an
    earlier version that wrote its keys in another order still resumes."""
    import yaml

    if saved == now:
        return True
    try:
        return yaml.safe_load(saved) == yaml.safe_load(now)
    except yaml.YAMLError:
        return False


def stable_config_text(cfg: Any) -> str:
    """The config as a resumed run must match it: without the keys declared ``resume_safe`` (threads, progress)."""
    import yaml

    doc = yaml.safe_load(dump_yaml(cfg)) or {}
    for key in resume_safe_keys(type(cfg)):
        doc.pop(key, None)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def pretrain(cfg: PretrainConfig, *, resume: bool = False, overwrite: bool = False) -> PretrainResult:
    """Run masked-LM training as ``cfg`` says; the run directory is locked for the whole run."""
    from parsner.inference.modeling import parse_spec
    from parsner.runlock import RunLock

    spec = parse_spec(cfg.model)
    inputs = [*cfg.text, *cfg.guard, cfg.model if spec.kind == "local" else None]
    check_outputs(cfg.out_dir, inputs, resume=resume, overwrite=overwrite, kind=KIND)
    with RunLock(cfg.out_dir, what="a pre-training run"):
        return _pretrain(cfg, spec, resume=resume, overwrite=overwrite)


def _read_text(cfg: PretrainConfig, normalizer: Any) -> tuple[Any, dict[str, Any]]:
    from parsner.data.pretext import apply_guard, guard_sentences, is_dataset_dir, read_texts

    norm = normalizer.normalize_token if normalizer is not None else None
    corpus = read_texts(cfg.text, norm, cfg.text_format)
    guards = [*cfg.guard, *(p for p in cfg.text if is_dataset_dir(Path(p)) and p not in cfg.guard)]
    tests = guard_sentences(guards, norm)
    report = apply_guard(corpus, tests, cfg.test_overlap, cfg.overlap_min_words)
    report["guards"] = guards
    if not guards:
        _log("no test set to guard against (--guard DATASET); the text was not checked for test sentences")
    return corpus, report


def _held_out(n: int, fraction: float, seed: int) -> set[int]:
    import numpy as np

    k = math.ceil(fraction * n) if fraction > 0 and n >= 20 else 0
    return set(np.random.default_rng(seed).permutation(n)[:k].tolist())


def _pretrain(cfg: PretrainConfig, spec: Any, *, resume: bool, overwrite: bool) -> PretrainResult:
    import torch

    from parsner.data import align
    from parsner.inference import modeling

    t0 = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    final, work = run_dirs(cfg.out_dir)
    normalizer = make_normalizer(cfg.normalizer)
    corpus, guard_report = _read_text(cfg, normalizer)
    held = _held_out(len(corpus.sentences), cfg.validation_fraction, cfg.seed)
    train_s = [s for k, s in enumerate(corpus.sentences) if k not in held]
    valid_s = [s for k, s in enumerate(corpus.sentences) if k in held]

    fingerprint = {"text": corpus.fingerprint(), "sources": corpus.sources}
    resume_from = prepare_work(work, stable_config_text(cfg), fingerprint, resume=resume,
                               overwrite=overwrite)
    tiny = {"layers": cfg.tiny_layers, "hidden": cfg.tiny_hidden, "heads": cfg.tiny_heads,
            "intermediate": cfg.tiny_intermediate, "vocab_size": cfg.tiny_vocab_size}
    tokenizer = modeling.load_tokenizer(spec, train_words=train_s, tiny_options=tiny)
    if resume_from:
        from parsner.training.checkpoints import check_checkpoint_tokenizer

        check_checkpoint_tokenizer(resume_from, tokenizer)
    max_length = min(cfg.max_length, int(getattr(tokenizer, "model_max_length", cfg.max_length)))
    enc_train = align.encode_words(train_s, tokenizer, None, max_length=max_length, stride=cfg.stride)
    enc_valid = align.encode_words(valid_s, tokenizer, None, max_length=max_length, stride=cfg.stride)
    summary = enc_train.summary()
    _log(f"{len(train_s)} sentences ({summary['words']} words, {summary['windows']} windows) for training, "
         f"{len(valid_s)} held out; {guard_report['overlapping_sentences']} overlapping test sentence(s) "
         f"({guard_report['mode']})")
    if spec.stand_in:
        _log(f"MODEL IS A STAND-IN: {spec.stand_in}")
    torch.manual_seed(cfg.seed)
    model = load_mlm(spec, tokenizer, cfg)
    masker = WholeWordMasker(tokenizer, cfg.mlm_probability, cfg.seed, cfg.whole_word_masking)
    trainer, stopper = _make_trainer(cfg, model, tokenizer, enc_train.windows, enc_valid.windows, masker, work)
    output = _run_trainer(trainer, stopper, resume_from, work)
    metrics: dict[str, Any] = {"train_loss": output.metrics.get("train_loss")}
    if enc_valid.windows:
        loss = float(trainer.evaluate()["eval_loss"])
        metrics.update({"heldout_mlm_loss": loss, "heldout_perplexity": math.exp(min(loss, 50.0)),
                        "heldout_sentences": len(valid_s)})
    from parsner.training.train import check_finite_weights

    check_finite_weights(model, cfg, work, work / "checkpoints")  # type: ignore[arg-type]
    info = {"train_runtime_s": float(output.metrics.get("train_runtime", 0.0)),
            "global_step": int(trainer.state.global_step), "epochs_trained": trainer.state.epoch,
            "encoding": {"train": summary, "heldout": enc_valid.summary()}, "text": corpus.sources,
            "test_guard": guard_report, "metrics": metrics, "resumed_from": resume_from}
    _write_output(cfg, spec, model, tokenizer, normalizer, info, final, work, overwrite)
    _log(f"done in {time.time() - t0:.0f}s: {final} ({json.dumps(metrics)})")
    return PretrainResult(final, metrics, int(trainer.state.global_step), info["train_runtime_s"], resume_from)


def training_args(cfg: Any, work: Path, n_train: int, *, evaluate_each_epoch: bool = False, **extra: Any) -> Any:
    """TrainingArguments shared by pretrain and distill (checkpoints in ``work/checkpoints``)."""
    import torch
    from transformers import TrainingArguments

    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        torch.set_flush_denormal(True)  # see parsner.training.train: denormal Adam moments stall x86 CPUs
    max_steps = getattr(cfg, "max_steps", None)
    total = max_steps or max(1, math.ceil(math.ceil(n_train / cfg.batch_size) * cfg.epochs))
    strategy = "epoch" if evaluate_each_epoch else "steps"
    return TrainingArguments(
        output_dir=str(work / "checkpoints"), seed=cfg.seed, num_train_epochs=cfg.epochs,
        max_steps=max_steps or -1, learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 64), warmup_steps=round(cfg.warmup_ratio * total),
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm, lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy="epoch" if evaluate_each_epoch else "no", save_strategy=strategy,
        save_steps=getattr(cfg, "save_steps", 500), save_total_limit=cfg.save_total_limit,
        logging_strategy="steps", logging_steps=cfg.logging_steps, use_cpu=not on_gpu,
        dataloader_num_workers=0, dataloader_pin_memory=on_gpu, disable_tqdm=not cfg.progress, report_to="none",
        remove_unused_columns=False, bf16=on_gpu and torch.cuda.is_bf16_supported(), **extra,
    )


def trainer_class(sampler_factory: Any, loss_fn: Any) -> Any:
    """A Trainer with our sampler, an in-order eval sampler, ``loss_fn(model, inputs)`` and marked checkpoints."""
    import torch
    from transformers import Trainer

    from parsner.training.checkpoints import CHECKPOINT_COMPLETE

    class JobTrainer(Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = False  # our losses are batch means

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return sampler_factory()

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            return torch.utils.data.SequentialSampler(eval_dataset)

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kwargs: Any) -> Any:
            loss, outputs = loss_fn(model, inputs)
            if not bool(torch.isfinite(loss).all()):
                from parsner.training.train import TrainingDiverged

                raise TrainingDiverged(f"training diverged at optimiser step {self.state.global_step + 1}: "
                                       f"the loss is {float(loss)}; lower learning_rate and start over")
            return (loss, outputs) if return_outputs else loss

        def _save_checkpoint(self, model: Any, trial: Any = None) -> None:
            super()._save_checkpoint(model, trial)
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            if self.args.should_save and folder.is_dir():
                (folder / CHECKPOINT_COMPLETE).write_text(json.dumps({"step": self.state.global_step}))

    return JobTrainer


def _make_trainer(cfg: PretrainConfig, model: Any, tokenizer: Any, train_w: list[Any], valid_w: list[Any],
                  masker: WholeWordMasker, work: Path) -> tuple[Any, Any]:
    from parsner.training.batching import PadCollator
    from parsner.training.callbacks import SignalStopper, make_callbacks

    lengths = [len(w.input_ids) for w in train_w]
    args = training_args(cfg, work, len(train_w), prediction_loss_only=True)
    cls = trainer_class(lambda: epoch_sampler(lengths, cfg.batch_size, cfg.seed),
                        lambda m, inputs: _with_outputs(masked_lm_loss(m, inputs)))
    stopper = SignalStopper()
    trainer = cls(
        model=model, args=args, train_dataset=masked_dataset(train_w, masker),
        eval_dataset=masked_dataset(valid_w, masker) if valid_w else None, processing_class=tokenizer,
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        callbacks=make_callbacks(stopper, work / "train_log.jsonl"),
    )
    return trainer, stopper


def run_trainer(trainer: Any, stopper: Any, resume_from: str | None, work: Path) -> Any:
    """``trainer.train`` with parsner's signal handling: a signal saves a checkpoint, then TrainingInterrupted."""
    from parsner.training.callbacks import TrainingInterrupted
    from parsner.training.checkpoints import last_checkpoint

    if resume_from:
        with (work / "train_log.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"event": "resume", "checkpoint": resume_from, "time": time.time()}) + "\n")
    stopper.install()
    try:
        output = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        stopper.restore()
    if stopper.signum is not None:
        raise TrainingInterrupted(stopper.signum, work, last_checkpoint(work / "checkpoints"))
    return output


_run_trainer = run_trainer


def _write_output(cfg: PretrainConfig, spec: Any, model: Any, tokenizer: Any, normalizer: Any,
                  info: dict[str, Any], final: Path, work: Path, overwrite: bool) -> None:
    from parsner._version import __version__
    from parsner.atomic import atomic_dir
    from parsner.training import config as config_rules

    meta = {"parsner_version": __version__, "kind": "pretrained-base", "objective": "masked-LM",
            "whole_word_masking": cfg.whole_word_masking, "mlm_probability": cfg.mlm_probability,
            "normalizer": cfg.normalizer, "base_model": cfg.model, "stand_in": spec.stand_in is not None,
            "stand_in_description": spec.stand_in, "max_length": cfg.max_length}
    with atomic_dir(final, overwrite=overwrite, kind=KIND) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if normalizer is not None:
            normalizer.save(tmp)
        (tmp / "parsner.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8")
        (tmp / CONFIG_FILE).write_text(config_rules.dump_yaml(cfg), encoding="utf-8")
        (tmp / "metrics.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", "utf-8")
        log = work / "train_log.jsonl"
        (tmp / "train_log.jsonl").write_text(log.read_text("utf-8") if log.is_file() else "", "utf-8")
        (tmp / "README.md").write_text(render_card(cfg, meta, info), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


def render_card(cfg: PretrainConfig, meta: dict[str, Any], info: dict[str, Any]) -> str:
    m = info["metrics"]
    name = cfg.out_dir.name
    lines = [
        "---", "language: [fa]", "library_name: transformers", "pipeline_tag: fill-mask",
        "tags: [persian, parsner, domain-adaptive-pretraining]", "---", "",
        f"# {name}: a Persian base model adapted by masked-LM training (ParsNER)", "",
    ]
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
    return "\n".join(lines) + "\n"


def _with_outputs(loss: Any) -> tuple[Any, dict[str, Any]]:
    return loss, {"loss": loss}
