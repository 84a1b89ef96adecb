"""Orders API: batch ingestion of orders from any channel (全渠道订单)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from siyu.commerce.services import record_orders
from siyu.core.api_auth import BATCH_RESPONSES, lenient_rows, require, run_batch

router = Router(tags=["orders"])

_TEXT = {"type": "string"}
_AMOUNT = {"type": ["string", "number"], "description": "Amount in CNY, e.g. \"199.00\" (strings avoid float rounding)"}
_TIME = {"type": "string", "description": "ISO 8601, or \"2025-03-08 10:30:00\" in the business zone"}

ORDER_ROW = {
    "type": "object",
    "title": "OrderRow",
    "description": "One order. Idempotency key: channel + external_id; re-sending it unchanged is a duplicate, "
                   "changed status/amounts/lines/new refunds update it.",
    "required": ["channel", "external_id", "paid_amount", "ordered_at"],
    "additionalProperties": True,
    "properties": {
        "channel": {**_TEXT, "description": "Sales channel code, e.g. tmall, pos-sh-01"},
        "external_id": {**_TEXT, "description": "The order id in that channel"},
        "status": {"type": "string", "enum": ["pending", "paid", "shipped", "completed", "closed"],
                   "default": "paid"},
        "paid_amount": _AMOUNT,
        "total_amount": {**_AMOUNT, "description": "Before discounts; defaults to paid_amount"},
        "ordered_at": _TIME,
        "paid_at": _TIME,
        "item_count": {"type": "integer", "description": "Defaults to the sum of line quantities"},
        "member_id": {"type": "integer"},
        "member_code": _TEXT,
        "buyer": {**_TEXT, "description": "Buyer identity as kind:value, e.g. nick:tb_abc or phone:13800138000; "
                                          "an unknown buyer is kept and bound when the identity joins a member"},
        "phone": _TEXT, "unionid": _TEXT, "openid": _TEXT, "external_userid": _TEXT, "nick": _TEXT,
        "pos_card": _TEXT, "email": _TEXT,
        "store": {**_TEXT, "description": "Store code; defaults to the channel's store"},
        "guide": {**_TEXT, "description": "Staff code of the guide credited"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {
            "line_no": {"type": "integer"}, "sku": _TEXT, "name": _TEXT, "quantity": {"type": "integer", "default": 1},
            "unit_price": _AMOUNT, "amount": _AMOUNT}}},
        "refunds": {"type": "array", "items": {"type": "object", "required": ["amount"], "properties": {
            "external_id": _TEXT, "amount": _AMOUNT, "refunded_at": _TIME, "reason": _TEXT}}},
    },
}
ORDER_EXAMPLE = {
    "channel": "tmall", "external_id": "TB20250308001", "buyer": "nick:tb_abc", "status": "paid",
    "paid_amount": "299.00", "ordered_at": "2025-03-08T10:30:00+08:00",
    "lines": [{"sku": "SKU-1", "name": "保湿面霜", "quantity": 1, "unit_price": "299.00"}],
}

OrderRows = lenient_rows(ORDER_ROW, examples=[ORDER_EXAMPLE])


class OrderBatchIn(Schema):
    rows: OrderRows


@router.post("/orders/batch", auth=require("orders:write"), response=BATCH_RESPONSES,
             summary="Record a batch of orders")
def record_order_batch(request: HttpRequest, payload: OrderBatchIn):
    """Record orders with their lines and refunds (scope `orders:write`).

    Orders bind to members by `member_id`, `member_code` or buyer identity; member stats are
    updated in the same transaction. Answers 200 with per-row rejections; nothing is saved when
    the batch fails as a whole (500 `batch_failed`).
    """
    return run_batch(record_orders, request, payload.rows)
