"""Unlabelled text for ``parsner pretrain`` and ``parsner distill --unlabelled``, and the test-set guard.

Inputs (``--text``), each split into sentences of words by :mod:`parsner.data.wordtok` (the segmentation the
tagger uses at inference) and normalised word by word like fine-tuning data:

* a **plain text file**: one document or sentence per line (blank lines ignored);
* a **JSONL file**: one object per line with ``text`` (a string) or ``tokens`` (a list of words);
* an **annotated corpus file** parsner reads (PEYMA, ARMAN, ParsTwiNER, CoNLL, ...): its words, tags ignored;
* a **built dataset** (``parsner data build``): its ``train`` and ``validation`` splits; its ``test`` split is
  never read as text and is always guarded against.

``fmt="auto"`` tells a token-per-line corpus from plain text by its lines: most end in a tag (``O``,
``B-X``, ``I_X``, ``|B_X``). ``text`` / ``jsonl`` / ``corpus`` force one reading for every file.

**Test guard.** A pretraining sentence that contains the whole word sequence of a test sentence (after the
same normalisation; test sentences of at least ``min_words`` words, since short boilerplate such as
"به گزارش ایرنا ،" recurs in every split) is an overlap. ``mode``: ``refuse`` (an error naming the first
overlaps), ``report`` (counted and kept) or ``drop`` (counted and removed).
"""

from __future__ import annotations

import hashlib
import logging
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from parsner.atomic import file_sha256
from parsner.data.readers.conll import parse_json
from parsner.errors import ConfigError, InputError

log = logging.getLogger(__name__)

TextFormat = Literal["auto", "text", "jsonl", "corpus"]
OverlapMode = Literal["refuse", "report", "drop"]  # unlabelled text that holds a test sentence
TEXT_FORMATS: tuple[str, ...] = typing.get_args(TextFormat)
OVERLAP_MODES: tuple[str, ...] = typing.get_args(OverlapMode)
_TAG_END = re.compile(r"(?:^|[\s|])(?:O|[BIESLU][-_][^\s|]+)$")


@dataclass
class TextCorpus:
    sentences: list[list[str]] = field(default_factory=list)  # normalised words
    origins: list[tuple[str, int]] = field(default_factory=list)  # (file, line) of each sentence
    sources: list[dict[str, Any]] = field(default_factory=list)  # per input: path, kind, sentences, words, sha256

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for s in self.sentences:
            h.update(("\x1f".join(s) + "\n").encode("utf-8"))
        return h.hexdigest()


def _identity(w: str) -> str:
    return w


def is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and (path / "dataset_dict.json").is_file()


def _sniff(path: Path) -> str:
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    lines: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for ln in f:
            if ln.strip() and not ln.startswith("-DOCSTART-"):
                lines.append(ln.rstrip("\r\n"))
            if len(lines) >= 50:
                break
    if not lines:
        raise InputError(path, None, "no text: every line is blank")
    if lines[0].lstrip().startswith("{"):
        return "jsonl"
    tagged = sum(1 for ln in lines if len(ln.split()) <= 4 and _TAG_END.search(ln.strip()))
    return "corpus" if tagged >= 0.8 * len(lines) else "text"


def _text_lines(path: Path, fmt: str) -> Iterable[tuple[int, list[str] | str]]:
    """(line, raw text or word list) of a plain text or JSONL file."""
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if fmt == "text":
                    yield lineno, line.rstrip("\r\n")
                    continue
                rec = parse_json(line, path, lineno)
                if isinstance(rec, dict) and isinstance(rec.get("text"), str):
                    yield lineno, rec["text"]
                elif isinstance(rec, dict) and isinstance(rec.get("tokens"), list):
                    yield lineno, [str(t) for t in rec["tokens"]]
                else:
                    raise InputError(path, lineno, 'a JSONL text record needs "text" (a string) or "tokens" (a list)')
    except UnicodeDecodeError as exc:
        raise InputError(path, None, f"not valid UTF-8 (byte {exc.start})") from None


def _dataset_splits(path: Path, splits: tuple[str, ...]) -> list[tuple[str, list[list[str]]]]:
    from parsner.data.dataset import load_dataset_dir

    dd = load_dataset_dir(path)
    return [(s, list(dd[s]["tokens"])) for s in splits if s in dd]


def read_texts(paths: list[str], normalize: Callable[[str], str] | None = None, fmt: str = "auto") -> TextCorpus:
    """Every input's sentences, as normalised words (see the module docstring)."""
    from parsner.data.wordtok import sentence_words

    if fmt not in TEXT_FORMATS:
        raise ConfigError(f"text_format must be one of {', '.join(TEXT_FORMATS)}, got {fmt!r}")
    norm = normalize or _identity
    out = TextCorpus()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(path, None, "does not exist")
        start = len(out.sentences)
        if is_dataset_dir(path):
            kind, digest = "dataset (train+validation; test never read)", None
            for split, rows in _dataset_splits(path, ("train", "validation")):
                for i, toks in enumerate(rows, 1):
                    out.sentences.append([norm(t) for t in toks if t.strip()])
                    out.origins.append((f"{path}:{split}", i))
        elif path.is_dir():
            raise InputError(path, None, "is a folder but not a dataset built by `parsner data build`")
        else:
            kind = _sniff(path) if fmt == "auto" else fmt
            digest = file_sha256(path)
            if kind == "corpus":
                from parsner.data.readers import read_file

                for s in read_file(path).sentences:
                    out.sentences.append([norm(t) for t in s.tokens if t.strip()])
                    out.origins.append((str(path), s.line))
            else:
                for lineno, item in _text_lines(path, kind):
                    groups = [item] if isinstance(item, list) else [[w.text for w in s] for s in sentence_words(item)]
                    for words in groups:
                        out.sentences.append([norm(w) for w in words if w.strip()])
                        out.origins.append((str(path), lineno))
        keep = [k for k in range(start, len(out.sentences)) if out.sentences[k]]
        out.sentences[start:] = [out.sentences[k] for k in keep]
        out.origins[start:] = [out.origins[k] for k in keep]
        n = len(out.sentences) - start
        if n == 0:
            raise InputError(path, None, "holds no words to train on")
        out.sources.append({"path": str(path), "kind": kind, "sentences": n,
                            "words": sum(len(s) for s in out.sentences[start:]), "sha256": digest})
    return out


def guard_sentences(paths: list[str], normalize: Callable[[str], str] | None = None) -> list[tuple[list[str], str]]:
    """Test sentences to guard against: the ``test`` split of a built dataset, or every sentence of a file."""
    norm = normalize or _identity
    out: list[tuple[list[str], str]] = []
    for raw in paths:
        path = Path(raw)
        if is_dataset_dir(path):
            for _, rows in _dataset_splits(path, ("test",)):
                out += [([norm(t) for t in toks], f"{path}:test:{i}") for i, toks in enumerate(rows, 1)]
        elif path.is_file():
            corpus = read_texts([str(path)], normalize)
            out += [(s, f"{o[0]}:{o[1]}") for s, o in zip(corpus.sentences, corpus.origins, strict=True)]
        else:
            raise InputError(path, None, "test guard: not a built dataset nor a file")
    return out


def find_overlaps(corpus: TextCorpus, tests: list[tuple[list[str], str]], min_words: int) -> list[tuple[int, str]]:
    """(corpus sentence index, test sentence id) for every corpus sentence that contains a test sentence."""
    index: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = {}
    for words, where in tests:
        if len(words) >= min_words:
            index.setdefault(tuple(words[:min_words]), []).append((tuple(words), where))
    found: list[tuple[int, str]] = []
    if not index:
        return found
    for k, sent in enumerate(corpus.sentences):
        hit = None
        for i in range(len(sent) - min_words + 1):
            for full, where in index.get(tuple(sent[i : i + min_words]), ()):
                if tuple(sent[i : i + len(full)]) == full:
                    hit = where
                    break
            if hit:
                break
        if hit:
            found.append((k, hit))
    return found


def apply_guard(corpus: TextCorpus, tests: list[tuple[list[str], str]], mode: str, min_words: int) -> dict[str, Any]:
    """Refuse, report or drop the sentences that contain a test sentence; returns the report."""
    if mode not in OVERLAP_MODES:
        raise ConfigError(f"test_overlap must be one of {', '.join(OVERLAP_MODES)}, got {mode!r}")
    found = find_overlaps(corpus, tests, min_words)
    report = {"mode": mode, "test_sentences": len(tests), "min_words": min_words,
              "overlapping_sentences": len(found),
              "examples": [f"{corpus.origins[k][0]}:{corpus.origins[k][1]} contains {w}" for k, w in found[:5]]}
    if not found:
        return report
    if mode == "refuse":
        first = "; ".join(report["examples"][:3])
        raise ConfigError(
            f"{len(found)} sentence(s) of the text contain a test sentence ({first}). Pre-training on a test set "
            "inflates its scores: remove them (--drop-test-overlap) or go ahead knowingly (--allow-test-overlap)"
        )
    verb = "removed" if mode == "drop" else "KEPT (--allow-test-overlap)"
    log.warning("%d sentence(s) of the text contain a test sentence; %s. E.g. %s", len(found), verb,
                report["examples"][0])
    if mode == "drop":
        bad = {k for k, _ in found}
        keep = [k for k in range(len(corpus.sentences)) if k not in bad]
        corpus.sentences = [corpus.sentences[k] for k in keep]
        corpus.origins = [corpus.origins[k] for k in keep]
    return report
