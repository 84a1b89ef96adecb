"""Cell cleaning: undo what spreadsheets do to identifiers.

Marketplace and POS exports protect long numbers from Excel's scientific notation by writing
them as formulas (``="293184…"``), with a leading apostrophe or with a tab; operators add stray
spaces. None of that is part of the value.
"""

from __future__ import annotations

import re
from typing import Any

_FORMULA_TEXT = re.compile(r'^=\s*"(.*)"$', re.DOTALL)
_SPACES = " \t\r\n\u00a0\u3000\ufeff"
_MASK = re.compile(r"[*＊]")
_SPECIAL_START = _SPACES + "='"


def clean_text(value: str) -> str:
    """``'="2931"'`` → ``2931``; ``"'0123"`` → ``0123``; ``"\\t2931 "`` → ``2931``."""
    if value and value[0] not in _SPECIAL_START and value[-1] not in _SPACES:
        return value  # the common case, kept cheap: most cells need nothing
    text = value.strip(_SPACES)
    match = _FORMULA_TEXT.match(text)
    if match:
        text = match.group(1).replace('""', '"').strip(_SPACES)
    if text.startswith("'"):
        text = text[1:].strip(_SPACES)
    return text


def clean_cell(value: Any) -> Any:
    """Clean one spreadsheet cell; integral floats become ints (Excel stores numbers as floats)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip(_SPACES))


def is_masked(value: Any) -> bool:
    """``138****1234``: a value the exporter hid; it identifies nobody."""
    return isinstance(value, str) and bool(_MASK.search(value))
