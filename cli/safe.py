"""Terminal-safe rendering of text that came from the server or other users (content, titles, names)."""

from __future__ import annotations

import re

# Every C0 and C1 control (ESC starts terminal escape sequences, CR and newline rewrite or forge
# lines, BEL rings), DEL, the bidirectional marks, embeddings, overrides and isolates (they show
# text out of order), and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(value: object) -> str:
    r"""``value`` as one line of inert text: controls and bidirectional characters become visible escapes.

    ESC becomes ``\x1b``, a newline ``\n``, so whatever another user wrote cannot move the cursor,
    recolour the terminal or start a line that looks like the CLI's own output.
    """
    return _UNSAFE.sub(_escape, str(value))


def shown_markup(value: object) -> str:
    """``shown(value)`` for a rich markup string: square brackets are escaped too.

    So text like ``[red]`` is printed as written instead of being read as a style.
    """
    from rich.markup import escape

    return escape(shown(value))
