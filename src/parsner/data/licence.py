"""The licences of the data a dataset or a model is made from, and the one rule that combines them.

A dataset built from several corpora, and a model trained on it, carries the **most restrictive** licence among
its sources: the rule spaCy follows for its trained pipelines, since a model cannot grant more than the data it
learnt from allows. :data:`LEVELS` orders the kinds of terms, once, for every card.

Terms are kept the way Hub card metadata spells them: ``license`` is a Hub licence id (``mit``), or ``other`` with
``license_name`` (an id of our own) and ``license_link`` (where the terms are stated). A licence *record* (the
``license`` of ``build.json`` and of ``parsner.json``) is :func:`combine`'s result: the winning terms plus every
source with its own terms. Anything nobody stated a licence for is ``unknown``, the most restrictive level.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from parsner.errors import ConfigError
from parsner.paths import SAMPLE_DIR

#: Kinds of terms, least restrictive first. Non-commercial allows any non-commercial use, research-only only
#: research, academic-only only research at academic institutions; unknown terms may forbid anything.
LEVELS = ("permissive", "share-alike", "non-commercial", "research-only", "academic-only", "unknown")

#: What each level means for a user of the dataset or model (the cards say it in these words).
MEANING = {
    "permissive": "Use, change and redistribution are allowed, commercial use included, on the licence's "
                  "conditions (mostly: keep its copyright and licence notice).",
    "share-alike": "Use is allowed, commercial use included; what you distribute that is made from it must carry "
                   "the same licence.",
    "non-commercial": "Non-commercial use only; commercial use needs the permission of the rights holders.",
    "research-only": "Research use only; any other use, commercial use included, needs the permission of the "
                     "rights holders.",
    "academic-only": "Academic research use only; commercial research, products and any other use need the "
                     "permission of the rights holders.",
    "unknown": "Nobody recorded the terms of at least one source: find them out from whoever provided it before "
               "using or sharing this beyond your own experiments.",
}

#: Hub licence ids (https://huggingface.co/docs/hub/repositories-licenses) that ``--license`` takes: (name, level).
HUB_LICENSES: dict[str, tuple[str, str]] = {
    "mit": ("MIT", "permissive"),
    "apache-2.0": ("Apache 2.0", "permissive"),
    "bsd-2-clause": ("BSD 2-clause", "permissive"),
    "bsd-3-clause": ("BSD 3-clause", "permissive"),
    "cc0-1.0": ("CC0 1.0", "permissive"),
    "cc-by-3.0": ("CC BY 3.0", "permissive"),
    "cc-by-4.0": ("CC BY 4.0", "permissive"),
    "odc-by": ("ODC-By", "permissive"),
    "cc-by-sa-3.0": ("CC BY-SA 3.0", "share-alike"),
    "cc-by-sa-4.0": ("CC BY-SA 4.0", "share-alike"),
    "odbl": ("ODbL", "share-alike"),
    "gpl-3.0": ("GPL 3.0", "share-alike"),
    "cc-by-nc-4.0": ("CC BY-NC 4.0", "non-commercial"),
    "cc-by-nc-sa-4.0": ("CC BY-NC-SA 4.0", "non-commercial"),
}

#: Terms with no Hub id that ``--license`` also takes: written ``license: other`` with this ``license_name``.
OWN_LICENSES: dict[str, tuple[str, str]] = {
    "research-only": ("research use only", "research-only"),
    "academic-only": ("academic research use only", "academic-only"),
}


@dataclass(frozen=True)
class Terms:
    """One source's licence: what it covers, its Hub metadata, its level, the terms in words and who says so."""

    name: str  # what the terms cover: "PEYMA", "the annotated files given by the user"
    license: str  # a Hub id, or "other"
    level: str  # one of LEVELS
    terms: str  # the terms in words
    source: str  # where they are stated (a sentence)
    license_name: str | None = None  # with "other": an id for the terms
    license_link: str | None = None  # where the terms are stated (a URL)
    corpus: str | None = None  # a known corpus's key

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Terms:
        """Terms read back from a record; anything malformed (a hand-edited file) reads as unknown."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and (v is None or isinstance(v, str))}
        try:
            terms = cls(**values)
        except TypeError:
            return unknown_terms(str(data.get("name") or "a source"), "licence unknown: its record is incomplete")
        return terms if terms.level in LEVELS else unknown_terms(terms.name, f"licence unknown: {terms.terms}")


def unknown_terms(name: str, why: str, source: str = "") -> Terms:
    return Terms(name=name, license="other", level="unknown", terms=why, source=source, license_name="unknown")


# ----------------------------------------------------------------------------------------- known corpora

CORPUS_TERMS: dict[str, Terms] = {
    # shared/data/peyma/README.md, "Licence as stated": the paper's abstract is the only statement; neither
    # repository the files come from licenses them (the PNLPhub/PEYMA Hub card's apache-2.0 is unverified).
    "peyma": Terms(
        name="PEYMA", corpus="peyma", license="other", level="research-only",
        terms="free for research purposes", license_name="peyma-research-use",
        license_link="https://arxiv.org/abs/1801.09936",
        source="The PEYMA paper (arXiv:1801.09936) says the corpus \"will be distributed for free for research "
               "purposes\"; the repositories the files come from state no licence for them.",
    ),
    # shared/data/arman/README.md, "Licence as stated", quoting ReadMe.txt inside ArmanPersoNERCorpus.zip and the
    # HaniehP/PersianNER README; there is no licence file.
    "arman": Terms(
        name="ARMAN (ArmanPersoNERCorpus)", corpus="arman", license="other", level="academic-only",
        terms="academic research use only", license_name="arman-academic-research-only",
        license_link="https://github.com/HaniehP/PersianNER",
        source="The corpus's ReadMe.txt and the HaniehP/PersianNER README say \"We are releasing it only for "
               "academic research use.\" (there is no licence file).",
    ),
    # shared/data/parstwiner/README.md, "Licence as stated": the repository's LICENSE is the standard MIT text.
    "parstwiner": Terms(
        name="ParsTwiNER", corpus="parstwiner", license="mit", level="permissive",
        terms="MIT", license_link="https://github.com/overfit-ir/parstwiner",
        source="The LICENSE file of the overfit-ir/parstwiner repository (MIT License, Copyright (c) 2020 "
               "overfit.ir).",
    ),
    # data/README.md, "Licence and provenance": written for this repository and released under MIT, like ParsNER
    # (pyproject.toml: license = "MIT").
    "sample": Terms(
        name="ParsNER embedded sample", corpus="sample", license="mit", level="permissive",
        terms="MIT, like the rest of ParsNER",
        source="data/README.md: written for the ParsNER repository by its authors and released under the MIT "
               "licence, like the rest of ParsNER.",
    ),
}

#: sha256 of every file of the known corpora (the SHA256SUMS beside each under shared/data), so that a build from
#: their files, not only ``--corpus``, knows whose terms they carry. A changed file is no longer recognised.
KNOWN_FILES: dict[str, str] = {
    "7b85d1bfcfc6f8793b9f343ccb34be34295230b8a856ee45be2f1bad48335706": "peyma",  # hooshvare_split/train.txt
    "87eba2616fbeebfc8589b7125568833e879efead5a1b12c38a3466702df31810": "peyma",  # hooshvare_split/dev.txt
    "59a5f7f2bc2f6d89965a8b832a371293df23976eb7552a41916976d3a7dd7c96": "peyma",  # hooshvare_split/test.txt
    "de57d5397524e7e437b8f62cc5277d5fbeb09297c9abcd83e6cbe20ea763b226": "peyma",  # 300K/persian_NER_300K.txt
    "860241812c234ce91b3718ff745145f7e36a8056538d356e650301fa36f6bb88": "arman",  # train_fold1.txt
    "66219f1dafd3de23ff89738a20fce3cf90db039234bfd3bd11e3c367f2f288ef": "arman",  # test_fold1.txt
    "9cc95df155886cebcbd2bc6ba3d10e1e68d4a15b48e51238d6085e5546367f7c": "arman",  # train_fold2.txt
    "e66dcc2cf2d41a6de81afb6c967fab3e812a848818d6513ccf4a20bed6e582d9": "arman",  # test_fold2.txt
    "8fc682b85187ed4a67e08d3fd5b2a28b6390644f9107c42f1c15e02f217515f7": "arman",  # train_fold3.txt
    "0467a53c7c44b7c462a0f87df91ca7d1afd5bb940e21f2d9b4ada571609deb97": "arman",  # test_fold3.txt
    "894d3b7f1f325e230175cc43b94910a3419edf11dc2e8d66378e0e8b8f453bb1": "parstwiner",  # train.txt
    "4957463dedd190cd9080d9d225892b77a9422ecce69306ac30d87a0ff9948fc6": "parstwiner",  # dev.txt
    "f8a24264d3acc7f69bb7599af7a1b3ba2d8cd71e9d69b71d1651a05e81721d9d": "parstwiner",  # test.txt
}

#: Files given by the user, with no licence given.
USER_FILES = unknown_terms("the annotated files given by the user",
                           "licence unknown: the annotated files were given by the user",
                           "No licence was given when the dataset was built (`parsner data build --license ID`).")


def file_terms(path: str | Path, sha256: str | None) -> Terms | None:
    """The terms of a known corpus's file (by its content), or of the embedded sample (by its place); else None."""
    corpus = KNOWN_FILES.get(sha256 or "")
    if corpus is None and Path(path).resolve() == (SAMPLE_DIR / "sample.jsonl").resolve():
        corpus = "sample"
    return CORPUS_TERMS[corpus] if corpus else None


def given_terms(license: str, covers: str = "the annotated files given by the user") -> Terms:
    """The terms a user gave (``--license``): a Hub id of :data:`HUB_LICENSES` or a key of :data:`OWN_LICENSES`."""
    key = license.strip().lower()
    said = f"Given by the user who built the dataset (`--license {key}`)."
    if key in HUB_LICENSES:
        name, level = HUB_LICENSES[key]
        return Terms(name=covers, license=key, level=level, terms=name, source=said)
    if key in OWN_LICENSES:
        terms, level = OWN_LICENSES[key]
        return Terms(name=covers, license="other", level=level, terms=terms, source=said, license_name=key)
    raise ConfigError(f"--license {license!r}: not a licence ParsNER can rank; use a Hub licence id "
                      f"({', '.join(HUB_LICENSES)}) or {' / '.join(OWN_LICENSES)}")


# ----------------------------------------------------------------------------------------- the rule


def combine(terms: Iterable[Terms]) -> dict[str, Any]:
    """The licence record of something made from all of ``terms``: the most restrictive one's licence (the first
    of those at the highest level), and every distinct source with its own terms."""
    unique = list(dict.fromkeys(terms)) or [unknown_terms("its data", "licence unknown: no licence was recorded")]
    top = max(unique, key=lambda t: LEVELS.index(t.level))
    record: dict[str, Any] = {"license": top.license}
    if top.license == "other":
        record["license_name"] = top.license_name or "unknown"
        if top.license_link:
            record["license_link"] = top.license_link
    record.update({"level": top.level, "terms": top.terms, "sources": [t.to_dict() for t in unique]})
    return record


def sources(record: Mapping[str, Any] | None, name: str, why: str) -> list[Terms]:
    """The terms a record lists; unknown terms named ``name`` (``why``) when there is no usable record."""
    items = record.get("sources") if isinstance(record, Mapping) else None
    if not isinstance(items, list) or not items:
        return [unknown_terms(name, why)]
    return [Terms.from_dict(s) if isinstance(s, Mapping) else unknown_terms(name, why) for s in items]


def dataset_terms(path: str | Path) -> list[Terms]:
    """The terms of a dataset folder's sources, from its build.json (an older build: from its corpus name)."""
    path = Path(path)
    name = f"the dataset `{path.name}`"
    try:
        build = json.loads((path / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [unknown_terms(name, "licence unknown: it has no readable build.json")]
    if not isinstance(build, dict):
        return [unknown_terms(name, "licence unknown: its build.json is not an object")]
    if "license" not in build:  # built before licences were recorded: a named corpus still has known terms
        info = build.get("card_info")
        corpus = info.get("corpus") if isinstance(info, dict) else None
        if corpus in CORPUS_TERMS:
            return [CORPUS_TERMS[corpus]]
    return sources(build.get("license"), name, "licence unknown: its build.json records no licence")


def base_model_terms(model: str | Path) -> list[Terms]:
    """The terms a local base model records (a ParsNER pre-training or run output); none for any other model, whose
    weights' licence is its publisher's to state, not a licence of our training data."""
    try:
        meta = json.loads((Path(model) / "parsner.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    record = meta.get("license") if isinstance(meta, dict) else None
    return sources(record, f"the base model `{model}`", "licence unknown") if isinstance(record, Mapping) else []


def text_terms(text_sources: Sequence[Mapping[str, Any]]) -> list[Terms]:
    """The terms of unlabelled text inputs (:class:`parsner.data.pretext.TextCorpus` ``sources``)."""
    out: list[Terms] = []
    for src in text_sources:
        path = str(src.get("path", ""))
        if (Path(path) / "dataset_dict.json").is_file():
            out += dataset_terms(path)
        else:
            out.append(file_terms(path, src.get("sha256")) or unknown_terms(
                f"the text `{Path(path).name}`", "licence unknown: the text was given by the user"))
    return out


# ----------------------------------------------------------------------------------------- cards


def front_matter(record: Mapping[str, Any]) -> dict[str, Any]:
    """The card metadata of a record: ``license`` (and ``license_name``/``license_link`` with ``other``)."""
    return {k: record[k] for k in ("license", "license_name", "license_link") if record.get(k)}


def card_lines(record: Mapping[str, Any], made_from: str) -> list[str]:
    """The licence paragraph of a card: the licence, why (``made_from``: "the data this model was trained on"),
    each source and its terms, and what the licence means for a user."""
    items = sources(record, "its data", "licence unknown: no licence was recorded")
    named = [f"`{record['license_name']}`"] if record.get("license_name") else []
    named += [f"terms at <{record['license_link']}>"] if record.get("license_link") else []
    head = f"`license: {record.get('license', 'other')}`" + (f" ({', '.join(named)})" if named else "")
    if len(items) > 1:
        why = (f"{head} is the most restrictive of the licences of {made_from}: whatever is made from several "
               "sources carries the terms of the most restrictive one. The sources:")
    else:
        why = f"{head} is the licence of {made_from}:"
    level = str(record.get("level", "unknown"))
    lines = [why, ""]
    lines += [f"- **{t.name}** ({t.level}): {t.terms}. {t.source}".rstrip() for t in items]
    lines += ["", f"**What this means:** {MEANING.get(level, MEANING['unknown'])} This summarises the terms as their "
              "sources state them; it is not legal advice."]
    return lines
