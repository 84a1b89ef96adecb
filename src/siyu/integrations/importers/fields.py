"""Siyu's canonical field names per entity: what the batch services read from a row.

File columns are mapped onto these names (by a preset and ``--map field=column``). Flat files
describe an order's lines and refunds with ``line.*`` and ``refund.*`` columns; an event's
properties with ``properties.<key>`` columns. ``identities``, ``lines``, ``refunds`` and
``properties`` may also hold JSON text.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from siyu.integrations.importers.errors import ImportSetupError
from siyu.members.identities import SHORTHAND_FIELDS
from siyu.members.services import FLAG_FIELDS, PROFILE_FIELDS

ENTITIES = ("members", "orders", "events")

IDENTITY_FIELDS = (*SHORTHAND_FIELDS, "identities")
LINE_FIELDS = ("line.sku", "line.name", "line.quantity", "line.unit_price", "line.amount")
REFUND_FIELDS = ("refund.external_id", "refund.amount", "refund.refunded_at", "refund.reason")
JSON_FIELDS = ("identities", "lines", "refunds", "properties")

FIELDS: dict[str, tuple[str, ...]] = {
    "members": ("member_code", *IDENTITY_FIELDS, *PROFILE_FIELDS, "gender", "birthday", "joined_at",
                *FLAG_FIELDS, "store", "guide"),
    "orders": ("channel", "external_id", "buyer", "member_id", "member_code", *IDENTITY_FIELDS, "status",
               "paid_amount", "total_amount", "ordered_at", "paid_at", "store", "guide", "item_count",
               "lines", "refunds", *LINE_FIELDS, *REFUND_FIELDS),
    "events": ("member", "member_id", "member_code", *IDENTITY_FIELDS, "kind", "occurred_at", "store",
               "channel", "properties", "idempotency_key"),
}

#: Order fields that belong to one line or refund: they differ between the rows of one order.
LINE_LEVEL = {"lines", "refunds", *LINE_FIELDS, *REFUND_FIELDS}

#: At least one field of each group must be mapped to a column of a tabular file.
REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "members": (("member_code", *IDENTITY_FIELDS),),
    "orders": (("external_id",), ("paid_amount", "line.amount", "line.unit_price", "lines"), ("ordered_at",)),
    "events": (("member", "member_id", "member_code", *IDENTITY_FIELDS), ("kind",), ("occurred_at",)),
}


def check_entity(entity: str) -> None:
    if entity not in ENTITIES:
        raise ImportSetupError(_("unknown entity %(e)s; use one of: %(all)s")
                               % {"e": entity, "all": ", ".join(ENTITIES)}, code="unknown_entity")


def is_known(entity: str, field: str, extra: tuple[str, ...] = ()) -> bool:
    if entity == "events" and field.startswith("properties.") and len(field) > len("properties."):
        return True
    return field in FIELDS[entity] or field in extra
