"""JSON from callers and files parsner does not control, read strictly: one clear refusal instead of a crash.

:func:`loads` is ``json.loads`` plus three refusals, each a :class:`JSONRefused` (a ``ValueError``) whose message
says what was wrong and where:

* **nesting deeper than** ``max_depth``: checked by a scan before parsing, because the standard parser recurses
  and a body of 200,000 ``[`` ends in ``RecursionError`` (or, with a raised recursion limit, a crash);
* **a key twice in one object** (``{"text": "a", "text": "b"}``): the standard parser keeps the last one, so
  two readers of the same record may disagree on what it says;
* **bytes that are not UTF-8**, with the byte offset.

Lone surrogates (``"\\ud800"``) are valid JSON and are left to :mod:`parsner.surrogates`, which each caller asks
with its own wording (file:line for records, the field for the HTTP API).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deep enough for every document parsner reads (a Label Studio export nests about 8 levels), far below
#: the point where the parser's recursion becomes a risk.
DEFAULT_MAX_DEPTH = 64

# What the depth scan looks for: a bracket, or a quote opening a string; and the rest of a string after its opening
# quote (possessive, so a string that never ends is given up on at once instead of retried from every quote in it).
_NEXT = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_OPENERS = frozenset("[{")


class JSONRefused(ValueError):
    """JSON that parsner will not read; ``str()`` is the whole message, ``line``/``column`` where known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message, self.line, self.column = message, line, column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def check_depth(text: str, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
    """Refuse ``text`` when its arrays and objects nest deeper than ``max_depth`` (strings are skipped).

    Linear in ``len(text)``: each character is looked at once. Text with no more brackets than ``max_depth`` is
    not scanned at all. An unterminated string ends the scan: such text is malformed, and the parser says where.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return
    depth, pos = 0, 0
    while (match := _NEXT.search(text, pos)) is not None:
        tok, pos = match.group(), match.end()
        if tok == '"':
            rest = _STRING_REST.match(text, pos)
            if rest is None:
                return
            pos = rest.end()
        elif tok in _OPENERS:
            depth += 1
            if depth > max_depth:
                raise JSONRefused(f"JSON nested deeper than {max_depth} levels", *_position(text, match.start()))
        else:
            depth -= 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JSONRefused(f"duplicate key {json.dumps(key, ensure_ascii=False)[:80]} in one object")
        out[key] = value
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates)


def loads(data: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse ``data`` (text, or UTF-8 bytes) like ``json.loads``, refusing what the module docstring lists.

    Raises :class:`JSONRefused` for every problem, malformed JSON included (with its line and column).
    """
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONRefused(f"not UTF-8 (byte {exc.start} is {data[exc.start]:#04x})") from None
    check_depth(data, max_depth)
    try:
        return _DECODER.decode(data)
    except json.JSONDecodeError as exc:
        raise JSONRefused(f"malformed JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:  # only if max_depth was set above what the interpreter allows
        raise JSONRefused("JSON nested too deeply to read") from None
    except JSONRefused:
        raise
    except ValueError as exc:  # e.g. an integer past Python's 4,300-digit limit for reading numbers
        raise JSONRefused(f"unreadable JSON: {exc}") from None
