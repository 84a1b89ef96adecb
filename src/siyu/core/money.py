"""Money is Decimal quantised to 0.01 CNY; never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def to_money(value) -> Decimal:
    """Parse ``value`` (str, int, Decimal; '¥1,299.00' included) into a 2-place Decimal.

    Raises ``ValueError`` for anything that is not a finite number. Floats are accepted only
    through their shortest repr, so 0.1 stays 0.10.
    """
    if value.__class__ is str:  # the common case first: a plain numeric string
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = _loose(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool):
        raise ValueError("not a number")
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        try:
            amount = Decimal(value)
        except (InvalidOperation, TypeError):
            amount = _loose(value)
    if not amount.is_finite():
        raise ValueError("not a number")
    try:
        return amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:  # more digits than Decimal's context holds
        raise ValueError("out of range") from exc


def _loose(value) -> Decimal:
    """An amount as people write it: ``¥1,299.00``, ``CNY 12``."""
    text = str(value).strip().replace(",", "").replace("¥", "").replace("￥", "")
    if text.upper().startswith("CNY"):
        text = text[3:].strip()
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
