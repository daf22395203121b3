"""A gazetteer for the feature CRF, from the entity names of *other* annotated corpora (``gazetteer_data``).

A name seen as an entity elsewhere is evidence a CRF cannot get from its own training split: most entities a PEYMA
model misses are names it never saw in training. Each name keeps the types it had in its source (``PERS`` from
ARMAN, ``PER`` from ParsTwiNER ...); the CRF learns what each type means for its own labels, so no mapping between
corpora is needed.

The run's test split must not leak in: a source sentence that contains a test sentence of the run's dataset (of
``min_words`` words or more), or that equals one, is dropped before any name is taken. A corpus's own training split
does not belong here either: every training name would be in the gazetteer, and the CRF would learn to trust it
more than it deserves on unseen text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_WORDS = 6  # longer names are rare and rarely repeat verbatim


def build_gazetteer(paths: list[str], normalize: Callable[[str], str] | None,
                    tests: list[tuple[list[str], str]], *, min_words: int,
                    max_words: int = MAX_WORDS) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """``({"name words": [types]}, report)`` from the annotated files ``paths`` (any format parsner reads).

    ``tests`` are the guarded test sentences (``pretext.guard_sentences``), already normalised like ``normalize``.
    """
    from parsner.data.pretext import TextCorpus, find_overlaps
    from parsner.data.readers import read_file
    from parsner.labels import spans_from_tags

    norm = normalize or (lambda w: w)
    exact = {tuple(words) for words, _ in tests}
    names: dict[str, set[str]] = {}
    sources: list[dict[str, Any]] = []
    for path in paths:
        sentences = read_file(path).sentences
        corpus = TextCorpus([[norm(t) for t in s.tokens] for s in sentences], [(path, s.line) for s in sentences])
        dropped = {k for k, _ in find_overlaps(corpus, tests, min_words)}
        dropped |= {k for k, words in enumerate(corpus.sentences) if tuple(words) in exact}
        before = len(names)
        for k, s in enumerate(sentences):
            if k in dropped:
                continue
            words = corpus.sentences[k]
            for start, end, etype in spans_from_tags(s.tags):
                if end - start <= max_words:
                    names.setdefault(" ".join(words[start:end]), set()).add(etype)
        sources.append({"path": str(path), "sentences": len(sentences), "dropped_holding_test": len(dropped),
                        "new_names": len(names) - before})
    table = {name: sorted(types) for name, types in sorted(names.items())}
    return table, {"names": len(table), "sources": sources, "max_words": max_words, "min_words": min_words}
