"""Recipes for the real Persian NER corpora: which files, which splits, what licence, what to warn about.

A recipe turns a corpus name (``peyma``, ``arman``, ``parstwiner``, ``sample``) into the inputs of
:func:`parsner.data.dataset.build_dataset`. Local files are looked up under a data folder (``--data-dir``, default
:func:`parsner.paths.shared_data_dir`); a missing file is an error that names the file and how to point at it.
``--from-hub`` loads a corpus by its Hub id instead, only when asked (the project runs offline by default).

ARMAN is distributed as three cross-validation folds: ``train_foldK`` holds exactly the sentences of the
other two ``test_fold`` files. Fold K therefore means train on ``train_foldK`` (with a seeded validation
carve) and test on ``test_foldK``. The union of all folds, which some papers report, puts every test
sentence in train; it is refused unless ``allow_leakage`` is set, and then flagged in the dataset card.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsner.data.licence import CORPUS_TERMS, Terms
from parsner.data.records import ReadResult, Sentence
from parsner.errors import ConfigError, InputError
from parsner.labels import TagError, canonical_tag, first_invalid_transition, repair_iob2
from parsner.paths import SAMPLE_DIR, shared_data_dir

if TYPE_CHECKING:  # pragma: no cover
    from parsner.data.dataset import BuildReport

ARMAN_FOLDS = ("1", "2", "3")

_PEYMA_CITATION = """@article{shahshahani2018peyma,
  title={PEYMA: A Tagged Corpus for Persian Named Entities},
  author={Mahsa Sadat Shahshahani and Mahdi Mohseni and Azadeh Shakery and Heshaam Faili},
  year={2018}, journal={ArXiv}, volume={abs/1801.09936}
}"""

_ARMAN_CITATION = """Hanieh Poostchi, Ehsan Zare Borzeshi, Mohammad Abdous, Massimo Piccardi.
"PersoNER: Persian Named-Entity Recognition". COLING 2016, pages 3381-3389.
Hanieh Poostchi, Ehsan Zare Borzeshi, Massimo Piccardi. "BiLSTM-CRF for Persian Named-Entity Recognition;
ArmanPersoNERCorpus: the First Entity-Annotated Persian Dataset". LREC 2018."""

_PARSTWINER_CITATION = """MohammadMahdi Aghajani, AliAkbar Badri, Hamid Beigy.
"ParsTwiNER: A Corpus for Named Entity Recognition at Informal Persian". W-NUT 2021, pages 131-136. https://aclanthology.org/2021.wnut-1.16"""


@dataclass(frozen=True)
class CorpusInfo:
    """What is known about a corpus, independent of where its files are."""

    name: str
    pretty_name: str
    description: str
    folder: str  # under the data dir
    citation: str
    format: str | None = None  # reader format of the local files
    hub_id: str | None = None  # optional; only used with --from-hub
    has_folds: bool = False

    @property
    def terms(self) -> Terms:
        """Its licence (:data:`parsner.data.licence.CORPUS_TERMS`, where each is cited)."""
        return CORPUS_TERMS[self.name]

    @property
    def license(self) -> str:
        return self.terms.license

    @property
    def license_note(self) -> str:
        return f"Licence: {self.terms.terms}. {self.terms.source}"


CORPORA: dict[str, CorpusInfo] = {
    "peyma": CorpusInfo(
        name="peyma",
        format="peyma",
        pretty_name="PEYMA (hooshvare split)",
        description=(
            "PEYMA, a Persian news NER corpus with 7 types (PER LOC ORG DAT TIM MON PCT), in the "
            "train/dev/test split that ParsBERT and later papers use (8028/925/1026 sentences)."
        ),
        folder="peyma/hooshvare_split",
        citation=_PEYMA_CITATION,
        hub_id="PNLPhub/PEYMA",
    ),
    "arman": CorpusInfo(
        name="arman",
        format="arman",
        pretty_name="ArmanPersoNERCorpus",
        description=(
            "ARMAN (ArmanPersoNERCorpus), Persian news NER with 6 types (PER ORG LOC FAC PRO EVE) in three "
            "cross-validation folds. Numbers are masked as `0`; Arabic ك/ي are mixed with Persian letters."
        ),
        folder="arman/ArmanPersoNERCorpus",
        citation=_ARMAN_CITATION,
        hub_id="persian_ner",
        has_folds=True,
    ),
    "parstwiner": CorpusInfo(
        name="parstwiner",
        format="parstwiner",
        pretty_name="ParsTwiNER",
        description=(
            "ParsTwiNER, informal Persian tweets with 6 types (PER LOC ORG EVE POG NAT). Out of domain for "
            "news models; it has orphan I- tags, repaired to B- unless --strict."
        ),
        folder="parstwiner",
        citation=_PARSTWINER_CITATION,
    ),
    "sample": CorpusInfo(
        name="sample",
        format="jsonl",
        pretty_name="ParsNER embedded sample",
        description=(
            "The small annotated Persian news sample written for the ParsNER repository (span-annotated "
            "articles with character offsets), split by article."
        ),
        folder="",
        citation="",
    ),
}


@dataclass
class Recipe:
    """Resolved inputs for :func:`parsner.data.dataset.build_dataset`."""

    name: str
    inputs: list[Path]
    format: str | None = None
    splits_file: Path | None = None
    fold: str | None = None
    card_info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def corpus_names() -> list[str]:
    return list(CORPORA)


def _info(name: str) -> CorpusInfo:
    try:
        return CORPORA[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}") from None


def _fold_key(info: CorpusInfo, fold: str | int | None, notes: list[str]) -> str | None:
    if not info.has_folds:
        if fold is not None:
            raise ConfigError(f"corpus {info.name!r} has no folds; drop --fold")
        return None
    if fold is None:
        notes.append(f"{info.name}: no --fold given, using fold 1 (choose 1, 2, 3 or all)")
        return "1"
    key = str(fold).strip().lower()
    if key in ARMAN_FOLDS or key == "all":
        return key
    raise ConfigError(f"--fold {fold!r}: {info.name} has folds 1, 2, 3 (or 'all', the leaked union)")


def expected_files(
    name: str, data_dir: Path | str | None = None, fold: str | int | None = None
) -> list[Path]:
    """The local files a recipe reads (whether or not they exist)."""
    info = _info(name)
    fold_key = _fold_key(info, fold, [])
    if info.name == "sample":
        return [SAMPLE_DIR / "sample.jsonl", SAMPLE_DIR / "splits.json"]
    base = Path(data_dir) if data_dir is not None else shared_data_dir()
    folder = base / info.folder
    if info.name == "arman":
        folds = ARMAN_FOLDS if fold_key == "all" else (fold_key,)
        return [folder / f"{kind}_fold{k}.txt" for kind in ("train", "test") for k in folds]
    return [folder / f"{s}.txt" for s in ("train", "dev", "test")]


def recipe(
    name: str,
    data_dir: Path | str | None = None,
    fold: str | int | None = None,
    *,
    allow_leakage: bool = False,
) -> Recipe:
    """Resolve a corpus name (and ARMAN fold) to existing local files plus its card information.

    Raises :class:`ConfigError` naming the first missing file and how to point at the data, and for the ARMAN
    all-folds union unless ``allow_leakage``.
    """
    info = _info(name)
    notes: list[str] = []
    fold_key = _fold_key(info, fold, notes)
    warnings: list[str] = []
    if fold_key == "all":
        if not allow_leakage:
            raise ConfigError(
                "the ARMAN all-folds union is 100% leaked: every test_foldK sentence is also in another "
                "fold's train file, so its test split is entirely inside its train split. Use --fold 1, 2 "
                "or 3 (cross-validation), or pass --allow-leakage to build it anyway (e.g. to reproduce "
                "published numbers), knowing its test scores measure memorisation"
            )
        warnings.append(
            "LEAKED BY CONSTRUCTION: this is the ARMAN all-folds union; train_fold1..3 together contain "
            "every test_fold sentence, so the test split is 100% inside train. Do not report its test scores "
            "as generalisation."
        )
    files = expected_files(info.name, data_dir, fold_key)
    for f in files:
        if not f.is_file():
            if info.name == "sample":
                raise ConfigError(
                    f"the embedded sample file {f} is missing; this ParsNER install is incomplete (reinstall it, "
                    "or run from a complete checkout)"
                )
            base = Path(data_dir) if data_dir is not None else shared_data_dir()
            how = (
                "pass --data-dir pointing at the folder that holds "
                f"{info.folder}/ (now {base}), or set $PARSNER_SHARED to the folder holding data/"
            )
            hub = f", or load it from the Hub with --from-hub ({info.hub_id})" if info.hub_id else ""
            raise ConfigError(f"{info.name}: missing file {f}; {how}{hub}")
    card_info: dict[str, Any] = {
        "pretty_name": info.pretty_name + (f" fold {fold_key}" if fold_key else ""),
        "description": info.description,
        "license": info.license,
        "license_note": info.license_note,
        "citation": info.citation,
        "warnings": warnings,
        "corpus": info.name,
        "fold": fold_key,
    }
    if info.name == "sample":
        return Recipe(
            name=info.name,
            inputs=[files[0]],
            format=info.format,
            splits_file=files[1],
            card_info=card_info,
            notes=notes,
        )
    return Recipe(
        name=info.name, inputs=files, format=info.format, fold=fold_key, card_info=card_info, notes=notes
    )


# ----------------------------------------------------------------------------------------------- hub


def _hub_offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def sentences_from_hub_split(
    rows: Any,
    label_names: Sequence[str],
    source: str,
    *,
    strict: bool = False,
    label_map: Mapping[str, str] | None = None,
    tokens_column: str = "tokens",
    tags_column: str = "ner_tags",
) -> ReadResult:
    """Convert one Hub split (rows with token and integer tag lists) to a :class:`ReadResult`.

    Tag names are normalised like file tags (``B_ORG`` -> ``B-ORG``, ``B-pers`` -> ``B-PER``); orphan ``I-``
    tags are repaired (counted) unless ``strict``. ``line`` is the 1-based row number.
    """
    result = ReadResult(path=source, format="hub")
    names = list(label_names)
    for n, row in enumerate(rows, start=1):
        tokens = list(row[tokens_column])
        try:
            tags = [
                canonical_tag(names[i] if isinstance(i, int) else str(i), label_map) for i in row[tags_column]
            ]
        except (TagError, IndexError) as exc:
            raise InputError(source, n, f"bad tag: {exc}") from exc
        bad = first_invalid_transition(tags)
        if bad is not None:
            if strict:
                raise InputError(source, n, f"token {bad + 1}: {tags[bad]} does not follow B-/I- of its type")
            tags, fixed = repair_iob2(tags)
            result.repaired += fixed
        if len(tokens) != len(tags):
            raise InputError(source, n, f"{len(tokens)} tokens but {len(tags)} tags")
        if not tokens:
            result.notes.append(f"row {n}: empty sentence skipped")
            continue
        result.sentences.append(Sentence(tokens=tokens, tags=tags, source=source, line=n, doc_id=""))
        result.tag_counts.update(tags)
    return result


def load_from_hub(
    name: str,
    fold: str | int | None = None,
    *,
    strict: bool = False,
    label_map: Mapping[str, str] | None = None,
) -> tuple[list[ReadResult], Recipe]:
    """Load a corpus by its Hub id (network needed); returns one :class:`ReadResult` per Hub split."""
    info = _info(name)
    notes: list[str] = []
    fold_key = _fold_key(info, fold, notes)
    if info.hub_id is None:
        raise ConfigError(f"no Hub id is known for {info.name}; use the local files (--data-dir)")
    if fold_key == "all":
        raise ConfigError("the ARMAN all-folds union is not available from the Hub; use local files")
    if _hub_offline():
        raise ConfigError(
            f"cannot load {info.hub_id} from the Hub: offline mode is on "
            "(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE). Unset it on a machine with network, or build from local "
            "files with --data-dir"
        )
    import datasets

    config = f"fold{fold_key}" if fold_key else None
    try:
        dd = datasets.load_dataset(info.hub_id, config)
    except Exception as exc:  # network, missing repo, changed layout: all the user's to resolve
        raise ConfigError(f"cannot load {info.hub_id} from the Hub: {exc}") from exc
    results = []
    for split in dd:
        ds = dd[split]
        tags_col = next((c for c in ("ner_tags", "tags", "labels") if c in ds.column_names), None)
        if "tokens" not in ds.column_names or tags_col is None:
            raise ConfigError(
                f"{info.hub_id}/{split}: expected 'tokens' and 'ner_tags' columns, got {ds.column_names}"
            )
        names = list(getattr(ds.features[tags_col].feature, "names", None) or [])
        source = f"hub:{info.hub_id}/{split}"
        results.append(
            sentences_from_hub_split(
                ds,
                names,
                source,
                strict=strict,
                label_map=label_map,
                tokens_column="tokens",
                tags_column=tags_col,
            )
        )
    rec = Recipe(
        name=info.name,
        inputs=[],
        fold=fold_key,
        card_info={
            "pretty_name": info.pretty_name + (f" fold {fold_key}" if fold_key else ""),
            "description": info.description + f" Loaded from the Hub: `{info.hub_id}`.",
            "license_note": info.license_note,
            "citation": info.citation,
            "license": info.license,
            "warnings": [],
            "corpus": info.name,
            "fold": fold_key,
        },
        notes=notes,
    )
    return results, rec


# --------------------------------------------------------------------------------------------- build


def build_corpus(
    name: str,
    out: Path | str,
    *,
    data_dir: Path | str | None = None,
    fold: str | int | None = None,
    allow_leakage: bool = False,
    from_hub: bool = False,
    **build_kwargs: Any,
) -> BuildReport:
    """Build a named corpus into ``out`` (see :func:`parsner.data.dataset.build_dataset` for ``build_kwargs``)."""
    from parsner.data.dataset import build_dataset
    from parsner.labels import load_label_map

    log = build_kwargs.get("log")
    if from_hub:
        lm = build_kwargs.get("label_map")
        lmap = lm if lm is None or isinstance(lm, Mapping) else load_label_map(lm)
        results, rec = load_from_hub(name, fold, strict=bool(build_kwargs.get("strict")), label_map=lmap)
        inputs: list[Any] = list(results)
    else:
        rec = recipe(name, data_dir, fold, allow_leakage=allow_leakage)
        inputs = list(rec.inputs)
        if rec.format and not build_kwargs.get("format"):
            build_kwargs["format"] = rec.format
        if rec.splits_file is not None and not build_kwargs.get("splits_file"):
            build_kwargs["splits_file"] = rec.splits_file
    for note in rec.notes:
        if log:
            log(f"  note: {note}")
    build_kwargs.setdefault("name", rec.card_info["pretty_name"])
    return build_dataset(inputs, out, card_info=rec.card_info, **build_kwargs)
