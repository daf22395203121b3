"""The feature CRF as a Tagger backend: a run directory holding ``model.crfsuite`` tags words, not sub-words.

A CRF run (``model: crf``, :mod:`parsner.training.crf_fit`) holds ``model.crfsuite`` (python-crfsuite's weights),
``crf.json`` (the feature settings and word-cluster table of :mod:`parsner.data.wordfeatures`), ``normalizer.json``
and ``parsner.json``. :class:`CrfRunner` is *word-level*: the Tagger hands it normalised words and gets back one tag
per word from the CRF's Viterbi path, with that tag's marginal probability as the word's score. Sentence splitting,
normalisation, offsets and spans stay the Tagger's, so entities and their offsets follow the same rules as a
network's. ``pip install 'parsner[crf]'`` installs python-crfsuite.

Both files are checked before crfsuite sees them. crfsuite's C reader follows every offset and index in
``model.crfsuite`` without a bound check, so a truncated or damaged file would end the process with SIGSEGV;
:func:`check_crfsuite_model` walks the same structure in Python first (header, the five chunks, both string tables'
hash buckets and records, every feature-reference list, every feature) and refuses, with :class:`ModelLoadError`,
anything crfsuite would read outside the file or loop on. crfsuite is then handed those very bytes
(``open_inmemory``), so the file cannot change between the check and the load. ``crf.json`` is read strictly
(:mod:`parsner.data.strictjson`) and checked against the bounds training has (:meth:`FeatureSpec.from_dict`).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from parsner.errors import ModelLoadError

CRF_FILE = "model.crfsuite"
#: The key of parsner.json holding the sha256 of model.crfsuite as training wrote it (runs since 0.1.0's CRF).
SHA256_KEY = "crfsuite_sha256"
FEATURES_FILE = "crf.json"
CRF_EXTRA_HINT = "install the CRF extra: pip install 'parsner[crf]'"

#: crfsuite allocates label x label matrices when it opens a model; NER needs tens of tags, not thousands.
MAX_LABELS = 1024
#: Words tagged in one crfsuite call, and the Viterbi context each piece of a longer "sentence" gets on each side.
PIECE_WORDS = 1000
PIECE_CONTEXT = 50
#: crfsuite keeps sizes and offsets in 32 bits.
MAX_MODEL_BYTES = 2**32 - 1
# The layout crfsuite writes (lib/crf/src/crf1d_model.c, lib/cqdb/src/cqdb.c), all little-endian: the file header
# (magic, size, type, version, counts, the offsets of the five chunks), then chunks that start with magic and size.
_HEADER = struct.Struct("<4sI4sIIIIIIIII")
_VERSION = 100
_CHUNK = 12  # magic, size, item count
_FEATURE = 20  # type, source, destination (uint32 each), weight (float64)
_CQDB_HEADER = 24  # magic, size, flags, byte-order mark, backward-array length and offset
_CQDB_TABLES = 256
_CQDB_DATA = _CQDB_HEADER + 8 * _CQDB_TABLES  # the first record
_CQDB_BYTE_ORDER = 0x62445371


def import_crfsuite() -> Any:
    try:
        import pycrfsuite
    except ImportError as exc:
        raise ModelLoadError(f"a feature-CRF model needs python-crfsuite: {CRF_EXTRA_HINT}") from exc
    return pycrfsuite


def is_crf_dir(path: str | Path) -> bool:
    return (Path(path) / CRF_FILE).is_file()


def read_feature_spec(directory: str | Path) -> Any:
    """The run's :class:`~parsner.data.wordfeatures.FeatureSpec`; a missing, malformed or out-of-range ``crf.json``
    is a :class:`ModelLoadError` naming the file and the key."""
    from parsner import surrogates
    from parsner.data import strictjson
    from parsner.data.wordfeatures import FeatureSpec, FeatureSpecError

    path = Path(directory) / FEATURES_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing; a CRF run needs its feature settings beside {CRF_FILE}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = strictjson.loads(raw)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: not valid CRF feature settings ({exc})") from None
    at = surrogates.find_in_json(raw.decode("utf-8"))
    if at >= 0:  # cluster ids and types become crfsuite's attribute strings, which must be UTF-8
        raise ModelLoadError(f"{path}: not valid CRF feature settings (a lone surrogate escape at character {at})")
    try:
        return FeatureSpec.from_dict(data)
    except FeatureSpecError as exc:
        raise ModelLoadError(f"{path}: not valid CRF feature settings ({exc})") from None


class _Damaged(ValueError):
    """What is wrong with a ``model.crfsuite``, in a few words (the caller adds the file)."""


def _u32(u8: Any, at: Any) -> Any:
    """The little-endian uint32s at byte offsets ``at`` (a numpy array; the caller has bounded them)."""
    import numpy as np

    return u8[np.asarray(at, dtype=np.int64)[:, None] + np.arange(4)].copy().view("<u4").ravel().astype(np.int64)


def _chunk(data: bytes, off: int, magic: bytes, what: str) -> tuple[int, int]:
    """(size, item count) of the chunk at ``off``, which must lie inside the file."""
    if off + _CHUNK > len(data):
        raise _Damaged(f"the {what} chunk (offset {off}) lies past the end of the file ({len(data)} bytes)")
    if data[off:off + 4] != magic:
        raise _Damaged(f"the {what} chunk at offset {off} does not start with {magic.decode()!r}")
    size, num = struct.unpack_from("<II", data, off + 4)
    if size < _CHUNK or off + size > len(data):
        raise _Damaged(f"the {what} chunk at offset {off} declares {size} bytes, past the end of the file")
    return size, num


def check_crfsuite_model(data: bytes) -> list[str]:
    """Everything crfsuite's reader follows in ``data``, checked; returns the model's tags in id order.

    Raises :class:`_Damaged` (a ``ValueError``) saying what is wrong: the header (magic, type, version, declared
    size equal to the real one), every chunk inside the file with its own magic, the counts plausible and equal
    across chunks, every offset, list and string inside its chunk, every feature id and label id in range, and
    the finite weights."""
    import numpy as np

    if len(data) < _HEADER.size:
        raise _Damaged(f"{len(data)} bytes, shorter than the {_HEADER.size}-byte CRFsuite header")
    (magic, size, kind, version, _num_features, n_labels, n_attrs,
     off_feat, off_labels, off_attrs, off_lrefs, off_arefs) = _HEADER.unpack_from(data)
    if magic != b"lCRF" or kind != b"FOMC":
        raise _Damaged(f"not a CRFsuite model (magic {magic!r}, type {kind!r}; expected b'lCRF', b'FOMC')")
    if version != _VERSION:
        raise _Damaged(f"CRFsuite format version {version}; this reader knows {_VERSION}")
    if size != len(data):
        raise _Damaged(f"the header declares {size} bytes but the file has {len(data)} (truncated or padded)")
    if not 1 <= n_labels <= MAX_LABELS:
        raise _Damaged(f"{n_labels} labels (expected 1 to {MAX_LABELS})")
    u8 = np.frombuffer(data, dtype=np.uint8)
    tags = _check_cqdb(data, u8, off_labels, n_labels, "labels")
    _check_cqdb(data, u8, off_attrs, n_attrs, "attributes")
    n_features = _check_features(data, off_feat, n_labels, n_attrs)
    _check_refs(data, u8, off_lrefs, b"LFRF", n_labels, n_features, "label references")
    _check_refs(data, u8, off_arefs, b"AFRF", n_attrs, n_features, "attribute references")
    return tags


def _check_features(data: bytes, off: int, n_labels: int, n_attrs: int) -> int:
    """The feature chunk: (type, source, destination, weight) records whose indices crfsuite uses unchecked."""
    import numpy as np

    size, num = _chunk(data, off, b"FEAT", "features")
    if _CHUNK + _FEATURE * num > size:
        raise _Damaged(f"the features chunk holds {num} features in {size} bytes")
    feats = np.frombuffer(data, dtype=np.dtype([("type", "<u4"), ("src", "<u4"), ("dst", "<u4"), ("w", "<f8")]),
                          count=num, offset=off + _CHUNK)
    state, trans = feats["type"] == 0, feats["type"] == 1
    if not np.all(state | trans):
        raise _Damaged("a feature of unknown type (expected 0 for a state feature, 1 for a transition)")
    if np.any(feats["dst"] >= n_labels) or np.any(trans & (feats["src"] >= n_labels)):
        raise _Damaged(f"a feature refers to a label beyond the model's {n_labels}")
    if np.any(state & (feats["src"] >= n_attrs)):
        raise _Damaged(f"a feature refers to an attribute beyond the model's {n_attrs}")
    if not np.all(np.isfinite(feats["w"])):
        raise _Damaged("a feature weight is not a finite number")
    return num


def _check_refs(data: bytes, u8: Any, off: int, magic: bytes, n_items: int, n_features: int, what: str) -> None:
    """A feature-reference chunk: per label (or attribute) an offset to a list ``count, fid...`` in the chunk."""
    import numpy as np

    size, num = _chunk(data, off, magic, what)
    table_end = off + _CHUNK + 4 * n_items
    if num < n_items or table_end > off + size:
        raise _Damaged(f"the {what} chunk lists {num} entries in {size} bytes; the model has {n_items}")
    if not n_items:
        return
    starts = np.frombuffer(data, dtype="<u4", count=n_items, offset=off + _CHUNK).astype(np.int64)
    if np.any(starts < table_end) or np.any(starts + 4 > off + size):
        raise _Damaged(f"an entry of the {what} chunk points outside it")
    counts = _u32(u8, starts)
    if np.any(starts + 4 + 4 * counts > off + size):
        raise _Damaged(f"a list of the {what} chunk runs past its end")
    total = int(counts.sum())  # bounded by the chunk's size, checked above
    first = np.repeat(starts + 4 - 4 * (np.cumsum(counts) - counts), counts)
    fids = _u32(u8, first + 4 * np.arange(total))
    if total and int(fids.max()) >= n_features:
        raise _Damaged(f"the {what} chunk refers to a feature beyond the model's {n_features}")


def _check_cqdb(data: bytes, u8: Any, off: int, count: int, what: str) -> list[str]:
    """A string table (CQDB: 256 open-addressing hash tables, records ``id, length, bytes\\0``, and an id -> record
    array); returns its strings in id order. Offsets inside it are relative to its start."""
    import numpy as np

    if off + _CQDB_DATA > len(data):
        raise _Damaged(f"the {what} table (offset {off}) lies past the end of the file")
    if data[off:off + 4] != b"CQDB":
        raise _Damaged(f"the {what} table at offset {off} does not start with 'CQDB'")
    size, _flags, order, bwd_size, bwd_off = struct.unpack_from("<IIIII", data, off + 4)
    if order != _CQDB_BYTE_ORDER or size < _CQDB_DATA or off + size > len(data):
        raise _Damaged(f"the {what} table at offset {off} has a damaged header")
    refs = np.frombuffer(data, dtype="<u4", count=2 * _CQDB_TABLES, offset=off + _CQDB_HEADER)
    refs = refs.reshape(_CQDB_TABLES, 2).astype(np.int64)
    used = refs[:, 0] != 0
    if np.any(used & ((refs[:, 1] == 0) | (refs[:, 0] < _CQDB_DATA) | (refs[:, 0] + 8 * refs[:, 1] > size))):
        raise _Damaged(f"a hash table of the {what} table lies outside it")
    if np.any(~used & (refs[:, 1] != 0)) or int(refs[:, 1].sum()) != 2 * count:
        raise _Damaged(f"the {what} table's hash tables do not hold the model's {count} entries")
    records = []
    for t_off, t_num in refs[used]:
        buckets = np.frombuffer(data, dtype="<u4", count=2 * int(t_num), offset=off + int(t_off))[1::2]
        if np.all(buckets != 0):  # a lookup that misses walks the table until an empty bucket
            raise _Damaged(f"a hash table of the {what} table has no empty bucket")
        records.append(buckets[buckets != 0].astype(np.int64))
    found = np.concatenate(records) if records else np.zeros(0, dtype=np.int64)
    if len(found) != count:
        raise _Damaged(f"the {what} table holds {len(found)} entries; the model has {count}")
    _check_records(u8, off, size, found, count, what)
    if not count:
        return []
    if not bwd_off or bwd_size < count or bwd_off < _CQDB_DATA or bwd_off + 4 * count > size:
        raise _Damaged(f"the {what} table's id index lies outside it")
    by_id = np.frombuffer(data, dtype="<u4", count=count, offset=off + bwd_off).astype(np.int64)
    ids = _check_records(u8, off, size, by_id, count, what)
    if np.any(ids != np.arange(count)):
        raise _Damaged(f"the {what} table's id index does not match its entries")
    if what != "labels":
        return []
    try:
        return [data[off + r + 8:off + r + 8 + int(k) - 1].split(b"\0")[0].decode("utf-8")
                for r, k in zip(by_id, _u32(u8, off + by_id + 4), strict=True)]
    except UnicodeDecodeError:
        raise _Damaged("a label is not UTF-8") from None


def _check_records(u8: Any, off: int, size: int, rec: Any, count: int, what: str) -> Any:
    """Records ``id, length, bytes ending in NUL`` at ``rec`` (relative to ``off``), inside ``size``; their ids."""
    import numpy as np

    if np.any(rec < _CQDB_DATA) or np.any(rec + 8 > size):
        raise _Damaged(f"an entry of the {what} table lies outside it")
    ids, lengths = _u32(u8, off + rec), _u32(u8, off + rec + 4)
    if np.any(lengths < 1) or np.any(rec + 8 + lengths > size) or np.any(u8[off + rec + 7 + lengths] != 0):
        raise _Damaged(f"a string of the {what} table runs past its end")
    if np.any(ids >= count):
        raise _Damaged(f"an entry of the {what} table has an id beyond the model's {count}")
    return ids


def read_crfsuite_model(path: Path) -> bytes:
    """The bytes of ``model.crfsuite``, checked by :func:`check_crfsuite_model` (a :class:`ModelLoadError` naming
    the file and what is wrong)."""
    try:
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise ModelLoadError(f"{path}: larger than a CRFsuite model can be ({MAX_MODEL_BYTES:,} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        check_crfsuite_model(data)
    except _Damaged as exc:
        raise ModelLoadError(f"{path}: damaged or not a CRFsuite model: {exc}") from None
    return data


class CrfRunner:
    """A trained feature CRF; ``tag_words(sentences)`` -> ``[(tags, scores)]``, one pair per sentence."""

    backend = "crf"
    word_level = True  # the Tagger passes words, not sub-word batches
    model = None
    device = "cpu"

    def __init__(self, directory: str | Path, labels: list[str], sha256: str | None = None) -> None:
        pycrfsuite = import_crfsuite()
        self.path = Path(directory) / CRF_FILE
        self.spec = read_feature_spec(directory)
        # crfsuite reads the model in place, without copying: these checked bytes live as long as the runner
        self._model_bytes = read_crfsuite_model(self.path)
        # The layout check cannot see a changed weight or name; the digest training recorded can.
        if sha256 is not None and hashlib.sha256(self._model_bytes).hexdigest() != sha256:
            raise ModelLoadError(f"{self.path}: not the file training wrote (its sha256 differs from the "
                                 f"{SHA256_KEY} in parsner.json): changed or damaged since")
        self._tagger = pycrfsuite.Tagger()
        try:
            self._tagger.open_inmemory(self._model_bytes)
            known = list(self._tagger.labels())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{self.path}: python-crfsuite cannot open this model ({exc})") from None
        labels = labels or sorted(known)
        if set(known) - set(labels):
            raise ModelLoadError(f"{self.path}: tags {sorted(set(known) - set(labels))} are not in parsner.json")
        self.config = SimpleNamespace(id2label=dict(enumerate(labels)), label2id={t: i for i, t in enumerate(labels)},
                                      max_position_embeddings=None, architectures=["FeatureCRF"])

    def tag_words(self, sentences: list[list[str]]) -> list[tuple[list[str], list[float]]]:
        out: list[tuple[list[str], list[float]]] = []
        for words in sentences:
            tags: list[str] = []
            scores: list[float] = []
            for a in range(0, len(words), PIECE_WORDS):
                piece_tags, piece_scores = self._tag_piece(words, a, min(len(words), a + PIECE_WORDS))
                tags += piece_tags
                scores += piece_scores
            out.append((tags, scores))
        return out

    def _tag_piece(self, words: list[str], a: int, b: int) -> tuple[list[str], list[float]]:
        """Tags and marginals of ``words[a:b]``. A sentence longer than PIECE_WORDS (text without sentence ends) is
        tagged piece by piece, so memory stays bounded however long it is (about 7 KB a word while tagged): each
        piece gets the features it has in the whole sentence (neighbours and gazetteer names reach into the margin)
        and PIECE_CONTEXT words of Viterbi context on each side; a sentence of one piece is tagged whole."""
        from parsner.data.wordfeatures import sentence_features

        lo, hi = max(0, a - PIECE_CONTEXT), min(len(words), b + PIECE_CONTEXT)
        reach = max(self.spec.window, self.spec.name_index[0])  # the farthest a word's features look
        start = max(0, lo - reach)
        feats = sentence_features(words[start:min(len(words), hi + reach)], self.spec)[lo - start:hi - start]
        if not feats:
            return [], []
        self._tagger.set(feats)
        tags = list(self._tagger.tag())
        keep = range(a - lo, b - lo)
        return [tags[i] for i in keep], [float(self._tagger.marginal(tags[i], i)) for i in keep]

    def __call__(self, input_ids: Any, attention_mask: Any) -> Any:
        raise TypeError("a feature CRF tags words: call tag_words(sentences)")


def load_crf_for_inference(path: str | Path, *, normalizer: str = "auto") -> tuple[Any, None, Any, dict[str, Any]]:
    """``(runner, None, normalizer, parsner_meta)`` of a CRF run directory (no tokenizer: it reads words)."""
    from parsner.data.normalize import choose_normalizer
    from parsner.inference.runmeta import RunMeta

    path = Path(path)
    meta = RunMeta.read(path).to_dict()
    digest = meta.get(SHA256_KEY)
    runner = CrfRunner(path, list(meta.get("labels") or []), digest if isinstance(digest, str) else None)
    saved = path / "normalizer.json"
    norm, meta["normalizer_used"] = choose_normalizer(
        normalizer, saved=saved if saved.is_file() else None, named=meta.get("normalizer"), model=str(path))
    return runner, None, norm, meta
