"""From mapped file rows to the records the batch services take.

A record is one member, event or order. An order may span several consecutive file rows (one
per line, as POS exports and marketplace item reports write them): rows next to each other with
the same channel and order id are one order, and so is a row that fills in nothing but line
columns (Excel reports merge the order cells of a receipt's lines). The same order id appearing
again further down with different rows is rejected rather than silently replacing the first
one's lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _

from siyu.core.money import ZERO, to_money
from siyu.core.rows import RowError
from siyu.integrations.importers.cleaning import is_blank, is_masked
from siyu.integrations.importers.fields import LINE_FIELDS, REFUND_FIELDS
from siyu.integrations.importers.readers import SourceRow
from siyu.members.identities import SHORTHAND_FIELDS


@dataclass
class Record:
    rows: list[SourceRow]
    data: dict[str, Any] | None = None
    error: RowError | None = None
    row_errors: dict[int, RowError] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return self.rows[0].number

    def errors_by_row(self, error: RowError | None = None) -> Iterator[tuple[SourceRow, RowError]]:
        """The reason to give for each file row of this rejected record."""
        error = error or self.error
        assert error is not None
        for row in self.rows:
            own = self.row_errors.get(row.number)
            if own is None and self.row_errors:
                first = min(self.row_errors)
                own = RowError(error.field, "order_incomplete",
                               _("another row of this order was rejected (row %(row)d)") % {"row": first})
            yield row, own or error


@dataclass
class Prepared:
    row: SourceRow
    data: dict[str, Any] | None
    error: RowError | None
    key: tuple[str, str] | None
    #: a row with only line columns filled: the next line of the order above (merged cells)
    continues: bool = False


def _json(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if name == "identities" and not text.startswith("["):
        return [part.strip() for part in text.replace("|", ";").replace("\n", ";").split(";") if part.strip()]
    try:
        return json.loads(text)
    except ValueError as error:
        raise RowError(name, "invalid_json", _("not valid JSON: %(e)s") % {"e": error}) from None


def _masked_ref(ref: Any) -> bool:
    return isinstance(ref, str) and ":" in ref and is_masked(ref.partition(":")[2])


def normalise(entity: str, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Shape one mapped row for the service; returns it and how many masked identities it dropped.

    A masked value (``138****1234``, ``t**8``) identifies nobody and would bind the row to
    whoever else has the same mask, so it is dropped; if nothing else names the member the
    service rejects the row for having no identity.
    """
    masked = 0
    for name in (*SHORTHAND_FIELDS, "buyer", "member"):
        value = data.get(name)
        if value is not None and (is_masked(value) if name in SHORTHAND_FIELDS else _masked_ref(value)):
            del data[name]
            masked += 1
    for name in ("identities", "lines", "refunds", "properties"):
        if name in data:
            data[name] = _json(name, data[name])
    if isinstance(data.get("identities"), list):
        kept = [ref for ref in data["identities"] if not _masked_ref(ref)]
        masked += len(data["identities"]) - len(kept)
        data["identities"] = kept
    if entity == "orders":
        for names, target in ((LINE_FIELDS, "lines"), (REFUND_FIELDS, "refunds")):
            flat = {name.partition(".")[2]: data.pop(name) for name in names if name in data}
            if flat:
                data[target] = [*_as_list(target, data.get(target)), flat]
    if entity == "events":
        flat = {name[len("properties."):]: data.pop(name) for name in list(data) if name.startswith("properties.")}
        if flat:
            current = data.get("properties") or {}
            if not isinstance(current, dict):
                raise RowError("properties", "invalid_value", _("expected an object"))
            data["properties"] = {**current, **flat}
    return data, masked


def _as_list(name: str, value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError(name, "invalid_value", _("expected a list"))
    return value


def _same(a: Any, b: Any) -> bool:
    if str(a).strip() == str(b).strip():
        return True
    try:
        return to_money(a) == to_money(b)
    except ValueError:
        return False


def merge_order_rows(group: list[Prepared]) -> dict[str, Any]:
    """One order from its rows: order fields must agree (blank is fine), lines and refunds add up."""
    data: dict[str, Any] = {}
    origin: dict[str, int] = {}
    lines: list = []
    refunds: list = []
    for p in group:
        assert p.data is not None
        for name, value in p.data.items():
            if name == "lines":
                lines.extend(_as_list(name, value))
            elif name == "refunds":
                refunds.extend(r for r in _as_list(name, value) if r not in refunds)
            elif name not in data:
                data[name], origin[name] = value, p.row.number
            elif not _same(data[name], value):
                raise RowError(name, "conflicting_order_rows", _(
                    "rows %(a)d and %(b)d of order %(id)s disagree on %(field)s: %(x)s / %(y)s; an order's rows "
                    "must repeat its order fields or leave them blank") % {
                    "a": origin[name], "b": p.row.number, "id": group[0].key[1] if group[0].key else "",
                    "field": name, "x": data[name], "y": value})
    if lines:
        data["lines"] = lines
    if refunds:
        data["refunds"] = refunds
    return data


def derive_paid_amount(data: dict[str, Any]) -> None:
    """For files with line amounts but no paid-amount column: the order paid what its lines cost."""
    total = ZERO
    for index, line in enumerate(data.get("lines") or []):
        if not isinstance(line, dict):
            return  # the service rejects the malformed line
        try:
            if not is_blank(line.get("amount")):
                total += to_money(line["amount"])
            elif not is_blank(line.get("unit_price")):
                total += to_money(line.get("unit_price")) * Decimal(str(line.get("quantity") or 1))
        except (ValueError, ArithmeticError):
            raise RowError(f"lines[{index}].amount", "invalid_amount",
                           _("cannot work out the paid amount: line amount %(v)s")
                           % {"v": line.get("amount", line.get("unit_price"))}) from None
    if data.get("lines"):
        data["paid_amount"] = total


def _digest(data: dict[str, Any]) -> int:
    text = json.dumps(data, sort_keys=True, cls=DjangoJSONEncoder, default=str).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest())


class OrderGrouper:
    """Groups consecutive rows of one order; remembers each order's first row to catch repeats.

    The memory is one small int pair per order (key hash → content hash and row), about 100
    bytes: a 1M-order file holds ~100 MB while it imports.
    """

    def __init__(self, *, derive_paid: bool):
        self.derive_paid = derive_paid
        self.seen: dict[int, int] = {}

    def records(self, prepared: Iterable[Prepared]) -> Iterator[Record]:
        group: list[Prepared] = []
        for p in prepared:
            if group and (p.continues or (p.key is not None and p.key == group[0].key)):
                group.append(p)
                continue
            if group:
                yield self._finish(group)
            group = [p]
        if group:
            yield self._finish(group)

    def _finish(self, group: list[Prepared]) -> Record:
        rows = [p.row for p in group]
        errors = {p.row.number: p.error for p in group if p.error is not None}
        if errors:
            return Record(rows, error=errors[min(errors)], row_errors=errors)
        try:
            data = merge_order_rows(group)
            if self.derive_paid:
                derive_paid_amount(data)
        except RowError as error:
            return Record(rows, error=error)
        key = group[0].key
        if key is not None:
            digest = _digest(data)
            first = self.seen.setdefault(hash(key), digest << 32 | rows[0].number)
            if first >> 32 != digest:
                return Record(rows, error=RowError("external_id", "repeated_order", _(
                    "order %(id)s already appeared at row %(row)d with different data; the rows of one "
                    "order must be next to each other") % {"id": key[1], "row": first & 0xFFFFFFFF}))
        return Record(rows, data)
