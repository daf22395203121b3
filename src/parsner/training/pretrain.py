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
* **Run directory, resume and signals** as for every job (:mod:`parsner.training.jobs`: ``OUT.incomplete/`` with
  checkpoints, ``--resume``, SIGINT/SIGTERM save a checkpoint and stop, the run directory is locked, ``OUT``
  appears only when complete). The test guard of :mod:`parsner.data.pretext` runs before any training.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsner.data.pretext import OverlapMode, TextFormat
from parsner.errors import ConfigError
from parsner.training import jobs
from parsner.training.batching import LengthBucketSampler
from parsner.training.checkpoints import check_checkpoint_tokenizer, check_saved_files, job_work_files
from parsner.training.config import (
    JobRuntime,
    LrScheduler,
    NormalizerName,
    TinySizes,
    dump_yaml,
    option,
)

KIND = "pretrained-model"
log = logging.getLogger(__name__)
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


PretrainResult = jobs.JobResult


def load_pretrain_config(path: str | None, overrides: dict[str, Any] | None = None,
                         sets: list[str] | None = None) -> PretrainConfig:
    """Defaults <- YAML file <- command-line options <- ``--set`` items, every key checked (parsner.training.config)."""
    from parsner.training import config as config_rules

    cfg = config_rules.load(PretrainConfig, path, overrides, sets)
    if not cfg.text:
        raise ConfigError("no text: give --text FILE... (or `text:` in the config)")
    return cfg


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


class EpochIndexSampler(LengthBucketSampler):
    """Length-grouped batches whose indices also carry the epoch (see :func:`masked_dataset`)."""

    def __iter__(self) -> Iterator[int]:
        base = self.epoch * len(self.lengths)
        for i in super().__iter__():
            yield base + i


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

    from parsner.inference import hub, runmeta, standins

    if spec.kind == "tiny":
        hidden, heads = cfg.tiny_hidden, cfg.tiny_heads
        if hidden % heads:
            raise ConfigError(f"tiny model: hidden size {hidden} is not a multiple of {heads} heads")
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=spec.layers or cfg.tiny_layers,
            num_attention_heads=heads, intermediate_size=cfg.tiny_intermediate,
            max_position_embeddings=runmeta.DEFAULT_MAX_LENGTH, pad_token_id=tokenizer.pad_token_id,
        )
        return BertForMaskedLM(config)
    if spec.kind == "parsbert-standin":
        config = AutoConfig.from_pretrained(str(standins.parsbert_dir()), trust_remote_code=False)
        if spec.layers:
            config.num_hidden_layers = spec.layers
        config.architectures = ["BertForMaskedLM"]
        return AutoModelForMaskedLM.from_config(config, trust_remote_code=False)
    hub.check_model_files(spec)
    return hub.from_pretrained(AutoModelForMaskedLM, spec, "weights")


# ----------------------------------------------------------------------------------------- run


def pretrain(cfg: PretrainConfig, *, resume: bool = False, overwrite: bool = False) -> PretrainResult:
    """Run masked-LM training as ``cfg`` says; the run directory is locked for the whole run."""
    from parsner.inference.hub import parse_spec

    spec = parse_spec(cfg.model)
    job = jobs.Job(cfg.out_dir, KIND, [*cfg.text, *cfg.guard, cfg.model if spec.kind == "local" else None],
                   "a pre-training run")
    return jobs.locked(job, lambda: _pretrain(cfg, spec, job, resume=resume, overwrite=overwrite), resume=resume,
                       overwrite=overwrite)


def _read_text(cfg: PretrainConfig, normalizer: Any) -> tuple[Any, dict[str, Any]]:
    from parsner.data.pretext import apply_guard, guard_sentences, is_dataset_dir, read_texts

    norm = normalizer.normalize_token if normalizer is not None else None
    corpus = read_texts(cfg.text, norm, cfg.text_format)
    guards = [*cfg.guard, *(p for p in cfg.text if is_dataset_dir(Path(p)) and p not in cfg.guard)]
    tests = guard_sentences(guards, norm)
    report = apply_guard(corpus, tests, cfg.test_overlap, cfg.overlap_min_words)
    report["guards"] = guards
    if not guards:
        log.info("no test set to guard against (--guard DATASET); the text was not checked for test sentences")
    return corpus, report


def _held_out(n: int, fraction: float, seed: int) -> set[int]:
    import numpy as np

    k = math.ceil(fraction * n) if fraction > 0 and n >= 20 else 0
    return set(np.random.default_rng(seed).permutation(n)[:k].tolist())


def _pretrain(cfg: PretrainConfig, spec: Any, job: jobs.Job, *, resume: bool, overwrite: bool) -> PretrainResult:
    import torch

    from parsner.data import align
    from parsner.inference import modeling
    from parsner.training.train import make_normalizer

    t0 = time.time()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dirs = jobs.open_run(job, resume=resume, overwrite=overwrite)
    normalizer = make_normalizer(cfg)  # type: ignore[arg-type]  (reads cfg.normalizer only)
    corpus, guard_report = _read_text(cfg, normalizer)
    held = _held_out(len(corpus.sentences), cfg.validation_fraction, cfg.seed)
    train_s = [s for k, s in enumerate(corpus.sentences) if k not in held]
    valid_s = [s for k, s in enumerate(corpus.sentences) if k in held]
    work_files = job_work_files(cfg, {"text": corpus.fingerprint(), "sources": corpus.sources})
    if dirs.resume and dirs.work.exists():
        check_saved_files(dirs.work, work_files)
    jobs.start_work(dirs, work_files)
    tokenizer = modeling.load_tokenizer(spec, train_words=train_s, tiny_options=jobs.tiny_options(cfg))
    if dirs.resume_from:
        check_checkpoint_tokenizer(dirs.resume_from, tokenizer)
    max_length = min(cfg.max_length, int(getattr(tokenizer, "model_max_length", cfg.max_length)))
    enc_train = align.encode_words(train_s, tokenizer, None, max_length=max_length, stride=cfg.stride)
    enc_valid = align.encode_words(valid_s, tokenizer, None, max_length=max_length, stride=cfg.stride)
    summary = enc_train.summary()
    log.info(f"{len(train_s)} sentences ({summary['words']} words, {summary['windows']} windows) for training, "
             f"{len(valid_s)} held out; {guard_report['overlapping_sentences']} overlapping test sentence(s) "
             f"({guard_report['mode']})")
    if spec.stand_in:
        log.info(f"MODEL IS A STAND-IN: {spec.stand_in}")
    torch.manual_seed(cfg.seed)
    model = load_mlm(spec, tokenizer, cfg)
    masker = WholeWordMasker(tokenizer, cfg.mlm_probability, cfg.seed, cfg.whole_word_masking)
    with jobs.cpu_float_mode():
        trainer, stopper = _make_trainer(cfg, model, tokenizer, enc_train.windows, enc_valid.windows, masker, dirs)
        output = jobs.fit(trainer, stopper, cfg, dirs)
        metrics: dict[str, Any] = {"train_loss": output.metrics.get("train_loss")}
        if enc_valid.windows:
            loss = float(trainer.evaluate()["eval_loss"])
            metrics.update({"heldout_mlm_loss": loss, "heldout_perplexity": math.exp(min(loss, 50.0)),
                            "heldout_sentences": len(valid_s)})
    jobs.check_finite_weights(model, cfg, dirs.work, dirs.ckpt_dir)
    info = {"train_runtime_s": float(output.metrics.get("train_runtime", 0.0)),
            "global_step": int(trainer.state.global_step), "epochs_trained": trainer.state.epoch,
            "encoding": {"train": summary, "heldout": enc_valid.summary()}, "text": corpus.sources,
            "test_guard": guard_report, "metrics": metrics, "resumed_from": dirs.resume_from}
    _write_output(cfg, spec, model, tokenizer, normalizer, info, dirs, overwrite)
    log.info(f"done in {time.time() - t0:.0f}s: {dirs.final} ({json.dumps(metrics)})")
    return PretrainResult(dirs.final, metrics, int(trainer.state.global_step), info["train_runtime_s"],
                          dirs.resume_from)


def _make_trainer(cfg: PretrainConfig, model: Any, tokenizer: Any, train_w: list[Any], valid_w: list[Any],
                  masker: WholeWordMasker, dirs: jobs.RunDirs) -> tuple[Any, jobs.SignalStopper]:
    from parsner.training.batching import PadCollator
    from parsner.training.trainer import ParsnerTrainer

    args = jobs.training_arguments(cfg, dirs.ckpt_dir, len(train_w), eval_strategy="no", save_strategy="steps",
                                   save_steps=cfg.save_steps, prediction_loss_only=True)
    callbacks, stopper = jobs.job_callbacks(dirs)
    trainer = ParsnerTrainer(
        model=model, args=args, train_dataset=masked_dataset(train_w, masker),
        eval_dataset=masked_dataset(valid_w, masker) if valid_w else None, processing_class=tokenizer,
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        callbacks=callbacks, window_lengths=[len(w.input_ids) for w in train_w], sampler_class=EpochIndexSampler,
        loss_fn=lambda m, inputs: _with_outputs(masked_lm_loss(m, inputs)),
    )
    return trainer, stopper


def _write_output(cfg: PretrainConfig, spec: Any, model: Any, tokenizer: Any, normalizer: Any,
                  info: dict[str, Any], dirs: jobs.RunDirs, overwrite: bool) -> None:
    from parsner._version import __version__
    from parsner.data.licence import base_model_terms, combine, text_terms
    from parsner.training.model_card import render_model_card

    meta = {"parsner_version": __version__, "kind": "pretrained-base", "objective": "masked-LM",
            "whole_word_masking": cfg.whole_word_masking, "mlm_probability": cfg.mlm_probability,
            "normalizer": cfg.normalizer, "base_model": cfg.model, "stand_in": spec.stand_in is not None,
            "stand_in_description": spec.stand_in, "max_length": cfg.max_length,
            "license": combine([*text_terms(info["text"]), *base_model_terms(cfg.model)])}
    with jobs.publish(dirs, kind=KIND, overwrite=overwrite) as tmp:
        jobs.save_model(tmp, model, tokenizer, normalizer)
        jobs.write_json(tmp / "parsner.json", meta)
        (tmp / CONFIG_FILE).write_text(dump_yaml(cfg), encoding="utf-8")
        jobs.write_json(tmp / "metrics.json", info)
        card = render_model_card(cfg=cfg, meta=meta, metrics=info, kind="pretrain")
        (tmp / "README.md").write_text(card, encoding="utf-8")


def _with_outputs(loss: Any) -> tuple[Any, dict[str, Any]]:
    return loss, {"loss": loss}
