"""The in-memory record that every reader returns and every writer and the dataset builder consume."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Sentence:
    """One annotated sentence. Tokens are kept exactly as in the source (normalisation is a later step)."""

    tokens: list[str]
    tags: list[str]  # IOB2, canonical upper-case types
    source: str  # file path as given
    line: int  # 1-based line of the first token (CoNLL) or of the record (JSONL)
    doc_id: str = ""  # document (article) id
    offsets: list[tuple[int, int]] | None = None  # char offsets in the ORIGINAL document text (span data)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"{self.source}:{self.line}: {len(self.tokens)} tokens but {len(self.tags)} tags")
        if self.offsets is not None and len(self.offsets) != len(self.tokens):
            raise ValueError(f"{self.source}:{self.line}: offsets do not match tokens")


@dataclass
class ReadResult:
    """What a reader found in one file: the sentences, plus what it had to repair or report."""

    path: str
    format: str
    sentences: list[Sentence] = field(default_factory=list)
    repaired: int = 0  # orphan I- tags turned into B- (non-strict mode)
    notes: list[str] = field(default_factory=list)  # e.g. spans split/merged onto word boundaries
    tag_counts: Counter = field(default_factory=Counter)
    texts: dict[str, str] = field(default_factory=dict)  # doc_id -> original document text (span data)
