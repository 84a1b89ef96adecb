"""Row-level parsing for batch ingestion.

Every entry point (API, file import, callbacks) hands the services plain mappings; the services
parse them field by field with these helpers, so a bad row is rejected with the field and a
precise, translatable reason while the rest of the batch lands.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from siyu.core.money import to_money
from siyu.core.time import make_aware

_TOO_LARGE = Decimal("1e12")  # amounts are DECIMAL(14, 2)


class RowError(Exception):
    """One field of one row is unacceptable."""

    def __init__(self, field: str, code: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code
        self.message = message


class RowReader:
    """Reads typed values out of one raw row, raising :class:`RowError` on the first problem."""

    def __init__(self, raw: Mapping[str, Any]):
        if raw.__class__ is not dict and not isinstance(raw, Mapping):  # the ABC check is slow; rows are dicts
            raise RowError("", "invalid_row", _("the row is not an object"))
        self.raw = raw

    def get(self, field: str) -> Any:
        value = self.raw.get(field)
        if value.__class__ is str:
            return value if value and not value.isspace() else None
        return value

    @staticmethod
    def _absent(field: str, required: bool, default: Any) -> Any:
        if required:
            raise RowError(field, "missing", _("this field is required"))
        return default

    def required(self, field: str) -> Any:
        value = self.get(field)
        if value is None:
            raise RowError(field, "missing", _("this field is required"))
        return value

    def text(self, field: str, *, required: bool = False, max_length: int = 255) -> str:
        value = self.raw.get(field)  # self.get(), inlined in the typed readers: ingestion's hottest lines
        if value.__class__ is str:
            if not value or value.isspace():
                return self._absent(field, required, "")
            text = value.strip()
        elif value is None:
            return self._absent(field, required, "")
        elif isinstance(value, (dict, list)):
            raise RowError(field, "invalid_value", _("expected text"))
        else:
            text = str(value).strip()
        if len(text) > max_length:
            raise RowError(
                field, "too_long",
                _("at most %(max)d characters, got %(n)d") % {"max": max_length, "n": len(text)},
            )
        return text

    def integer(self, field: str, *, required: bool = False, minimum: int | None = 0,
                default: int | None = None) -> int | None:
        value = self.raw.get(field)
        if value is None or (value.__class__ is str and (not value or value.isspace())):
            return self._absent(field, required, default)
        number = value if value.__class__ is int else self._whole_number(field, value)
        if minimum is not None and number < minimum:
            raise RowError(field, "out_of_range", _("must be at least %(min)d") % {"min": minimum})
        return number

    @staticmethod
    def _whole_number(field: str, value: Any) -> int:
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            number = int(str(value).strip()) if not isinstance(value, float) else int(value)
        except (TypeError, ValueError):
            raise RowError(field, "invalid_number", _("not a whole number: %(v)s") % {"v": value}) from None
        return number

    def money(self, field: str, *, required: bool = False,
              default: Decimal | None = None) -> Decimal | None:
        value = self.raw.get(field)
        if value is None or (value.__class__ is str and (not value or value.isspace())):
            return self._absent(field, required, default)
        try:
            amount = to_money(value)
        except ValueError:
            raise RowError(field, "invalid_amount", _("not an amount: %(v)s") % {"v": value}) from None
        if amount < 0:
            raise RowError(field, "negative_amount", _("amount must not be negative: %(v)s") % {"v": value})
        if amount >= _TOO_LARGE:
            raise RowError(field, "out_of_range", _("amount is too large: %(v)s") % {"v": value})
        return amount

    def datetime(self, field: str, *, required: bool = False) -> dt.datetime | None:
        value = self.required(field) if required else self.get(field)
        if value is None:
            return None
        parsed = parse_moment(value)
        if parsed is None:
            raise RowError(field, "invalid_datetime", _("not a date and time: %(v)s") % {"v": value})
        return parsed

    def date(self, field: str, *, required: bool = False) -> dt.date | None:
        value = self.required(field) if required else self.get(field)
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = str(value).strip().replace("/", "-").replace(".", "-")
        try:
            parsed = parse_date(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise RowError(field, "invalid_date", _("not a date: %(v)s") % {"v": value})
        return parsed

    def boolean(self, field: str) -> bool | None:
        value = self.get(field)
        if value is None:
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "y", "是", "t"}:
            return True
        if text in {"0", "false", "no", "n", "否", "f"}:
            return False
        raise RowError(field, "invalid_boolean", _("expected yes/no: %(v)s") % {"v": value})

    def choice(self, field: str, choices, *, default: str | None = None,
               aliases: Mapping[str, str] | None = None) -> str | None:
        value = self.get(field)
        if value is None:
            return default
        text = str(value).strip()
        if aliases and text in aliases:
            return aliases[text]
        allowed = _choice_values(choices)
        if text in allowed:
            return text
        if text.lower() in allowed:
            return text.lower()
        raise RowError(
            field, "invalid_choice",
            _("%(v)s is not one of: %(choices)s") % {"v": value, "choices": ", ".join(choices.values)},
        )

    def mapping(self, field: str) -> dict:
        value = self.get(field)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise RowError(field, "invalid_value", _("expected an object"))
        return dict(value)

    def items(self, field: str) -> list:
        value = self.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            raise RowError(field, "invalid_value", _("expected a list"))
        return value


@functools.cache
def _choice_values(choices) -> frozenset[str]:
    return frozenset(choices.values)  # Django rebuilds the list on every access


_DATETIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y%m%d%H%M%S", "%Y-%m-%d", "%Y/%m/%d", "%Y%m%d",
)
_CN_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*(.*)$")


def parse_moment(value: Any) -> dt.datetime | None:
    """Parse ISO 8601 and the formats Chinese POS and marketplace exports use.

    Naive values are wall time in the business zone. The result is aware and in UTC, as the
    database gives instants back: ``2025-03-08T10:30:00+08:00`` parses with an offset object of
    its own, and comparing datetimes whose zones are different objects costs each comparison two
    offset lookups (sorting a batch's thousand order times: 2 ms against 0.07 ms).
    """
    if isinstance(value, dt.datetime):
        return make_aware(value).astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return make_aware(dt.datetime.combine(value, dt.time.min)).astimezone(dt.UTC)
    text = str(value).strip()
    match = _CN_DATE.match(text)
    if match:
        year, month, day, rest = match.groups()
        text = f"{year}-{int(month):02d}-{int(day):02d} {rest}".strip()
    try:
        parsed = parse_datetime(text.replace("T", " ", 1) if "T" in text[10:11] else text)
    except ValueError:
        return None
    if parsed is None:
        for fmt in _DATETIME_FORMATS:
            try:
                parsed = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None or not 1900 <= parsed.year <= 2200:
        return None
    return make_aware(parsed).astimezone(dt.UTC)


def unknown_reference(field: str, value: Any) -> RowError:
    """The row names a store, guide, channel or member that does not exist."""
    messages = {
        "channel": _("no sales channel with code %(v)s"),
        "store": _("no store with code %(v)s"),
        "guide": _("no staff member with code %(v)s"),
        "member_id": _("no member with id %(v)s"),
        "member_code": _("no member with code %(v)s"),
        "member": _("no member matches %(v)s"),
    }
    code = "unknown_member" if field.startswith("member") else f"unknown_{field}"
    return RowError(field, code, messages[field] % {"v": value})
