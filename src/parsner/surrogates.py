"""Lone surrogates: code points U+D800-U+DFFF on their own, which are not characters.

A surrogate is half of a UTF-16 pair. A Python string gets one from a JSON escape such as ``"\\ud800"``
(valid JSON, common in scraped text cut inside an emoji) or from bytes decoded with ``surrogateescape``.
Such a string cannot be written as UTF-8, so it would fail late (at save time, in the tokenizer) instead of
where it was read. Every reader of JSON and every entry point for text to tag asks this module first:

* training data (``parsner data build``, pretraining text): refused, naming file, line and column;
* text to tag (``parsner predict``, ``parsner serve``, :class:`parsner.tagger.Tagger`): refused too, naming
  the text and the character. It is not replaced with U+FFFD: the answer's entities promise
  ``text[start:end] == entity["text"]`` for the caller's own string, which a replaced character would break,
  and the caller knows better than parsner what the broken character was (usually an emoji cut in half).

A strictly decoded UTF-8 file cannot hold a surrogate (the codec refuses encoded surrogates), so text files
need no check of their own; JSON escapes and strings built in Python do.
"""

from __future__ import annotations

import re

#: Any surrogate code point. In a Python ``str`` every surrogate is a lone one: a valid pair read from JSON
#: becomes one astral character, and a pair kept as two code points cannot be encoded either.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: JSON escapes, scanned left to right: a valid high+low pair, a surrogate escape on its own, or any other
#: escape (consumed so that ``\\\\ud800``, an escaped backslash, is not read as an escape).
_JSON_ESCAPE = re.compile(
    r"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|(?P<lone>u[dD][89a-fA-F][0-9a-fA-F]{2})"
    r"|.)",
    re.S,
)
_MAYBE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

#: What a lone surrogate is, said once for every message.
WHAT = "half of a UTF-16 surrogate pair, not a character (text cut inside an emoji, or mis-decoded)"


def find(text: str) -> int:
    """Index of the first lone surrogate in ``text``, or -1."""
    m = _SURROGATE.search(text)
    return m.start() if m else -1


def problem(text: str) -> str | None:
    """Why ``text`` cannot be used (``"a lone surrogate U+D800 at character 5: ..."``), or None when it can."""
    k = find(text)
    if k < 0:
        return None
    return f"a lone surrogate U+{ord(text[k]):04X} at character {k + 1}: {WHAT}"


def find_in_json(raw: str) -> int:
    """Offset in the JSON text ``raw`` of the first escape that decodes to a lone surrogate, or -1.

    Only meaningful for text that parsed as JSON (there, backslashes occur only in string escapes).
    Python's decoder joins a high escape followed at once by a low escape into one character, as here.
    """
    if not _MAYBE_SURROGATE_ESCAPE.search(raw):  # the usual case: one scan in C, no escapes to walk
        return -1
    for m in _JSON_ESCAPE.finditer(raw):
        if m.group("lone"):
            return m.start()
    return -1
