"""Column presets: which file columns mean which Siyu field, and how their values convert.

- ``siyu``: Siyu's canonical field names as headers (members, orders, events).
- ``taobao``: the Taobao/Tmall seller-center order export (订单报表), one row per order.
- ``pos``: a generic Chinese POS export: sales receipts one line per row, and member lists.

A preset's conversion turns the mapped values of one row into what the batch service reads; it
never parses values the service parses itself (dates, amounts): those are passed through, so
a bad value is rejected by the service with its field and reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from siyu.core.money import to_money
from siyu.integrations.importers.errors import ImportSetupError
from siyu.integrations.importers.fields import FIELDS

Convert = Callable[[dict[str, Any]], dict[str, Any]]

COUNTED = ("paid", "shipped", "completed")


@dataclass(frozen=True)
class Preset:
    name: str
    description: Any
    #: entity → field → header names, first match wins
    columns: Mapping[str, Mapping[str, tuple[str, ...]]]
    #: entity → row conversion after mapping
    convert: Mapping[str, Convert] = field(default_factory=dict)
    #: entity → fields only this preset knows (mappable with --map)
    extra_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def supports(self, entity: str) -> bool:
        return entity in self.columns

    def convert_row(self, entity: str, data: dict[str, Any]) -> dict[str, Any]:
        conversion = self.convert.get(entity)
        return conversion(data) if conversion else data


def _normalise_status(text: str) -> str:
    return re.sub(r"[\s,，。.、:：()（）\[\]【】]", "", text).upper()


# --- siyu ------------------------------------------------------------------------------------

def _canonical(entity: str) -> dict[str, tuple[str, ...]]:
    columns = {name: (name,) for name in FIELDS[entity]}
    if entity == "members":
        columns["member_code"] = ("member_code", "code")
    return columns


SIYU = Preset("siyu", gettext_lazy("Siyu's field names as column headers"),
              {entity: _canonical(entity) for entity in FIELDS})


# --- taobao ----------------------------------------------------------------------------------

TAOBAO_REFUND_ID = "taobao-refund"

#: Seller-center status texts (and the open-platform codes some tools export) → order status.
TAOBAO_STATUS = {_normalise_status(text): status for text, status in {
    "交易成功": "completed", "TRADE_FINISHED": "completed",
    "卖家已发货，等待买家确认": "shipped", "卖家已发货": "shipped", "等待买家确认收货": "shipped",
    "卖家部分发货": "shipped", "部分发货": "shipped", "买家已签收": "shipped",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped", "SELLER_CONSIGNED_PART": "shipped", "TRADE_BUYER_SIGNED": "shipped",
    "买家已付款，等待卖家发货": "paid", "买家已付款": "paid", "等待卖家发货": "paid",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "等待买家付款": "pending", "付款确认中": "pending", "没有创建支付宝交易": "pending",
    "WAIT_BUYER_PAY": "pending", "PAY_PENDING": "pending", "TRADE_NO_CREATE_PAY": "pending",
    "交易关闭": "closed", "交易关闭(退款)": "closed", "交易被淘宝关闭": "closed",
    "TRADE_CLOSED": "closed", "TRADE_CLOSED_BY_TAOBAO": "closed",
}.items()}


def taobao_status(value: Any) -> Any:
    """Map a Taobao status text; an unknown one is passed through for the service to reject."""
    text = _normalise_status(str(value))
    if text in TAOBAO_STATUS:
        return TAOBAO_STATUS[text]
    for prefix, status in (("交易关闭", "closed"), ("交易成功", "completed"), ("卖家已发货", "shipped")):
        if text.startswith(prefix):
            return status
    return value


def _positive_money(value: Any) -> bool | None:
    """True/False when ``value`` is an amount above/at most zero; None when it is not an amount."""
    try:
        return to_money(value) > 0
    except ValueError:
        return None


def _convert_taobao_order(data: dict[str, Any]) -> dict[str, Any]:
    nick = data.pop("nick", None)
    if nick is not None and "buyer" not in data:
        # The buyer of a marketplace order is the nick; an explicit buyer keeps it the order's
        # identity even when a phone (stronger) is mapped too, so binding waits for the nick.
        data["buyer"] = f"nick:{nick}"
    if "status" in data:
        data["status"] = taobao_status(data["status"])
    if "line.name" in data:
        title = str(data["line.name"])
        data["line.name"] = title if len(title) <= 200 else title[:199] + "…"
        data.setdefault("line.quantity", data.get("item_count", 1))
        amount = data.get("total_amount", data.get("paid_amount"))
        if amount is not None:
            data.setdefault("line.amount", amount)
    if "refund.amount" in data:
        if _positive_money(data["refund.amount"]) is False:
            for name in [n for n in data if n.startswith("refund.")]:
                del data[name]
        else:  # one refund per order in this export: a fixed id makes re-imports update it
            data.setdefault("refund.external_id", TAOBAO_REFUND_ID)
    return data


TAOBAO = Preset(
    "taobao", gettext_lazy("Taobao/Tmall seller-center order export (订单报表)"),
    {"orders": {
        "external_id": ("订单编号", "订单号", "主订单编号"),
        "nick": ("买家会员名", "买家昵称", "买家会员名称"),
        "paid_amount": ("买家实际支付金额", "实付金额", "买家实付金额"),
        "total_amount": ("总金额", "订单金额", "订单总金额"),
        "status": ("订单状态",),
        "ordered_at": ("订单创建时间", "创建时间", "下单时间"),
        "paid_at": ("订单付款时间", "付款时间"),
        "line.name": ("宝贝标题", "商品标题"),
        "item_count": ("宝贝总数量", "商品数量", "购买数量"),
        "refund.amount": ("退款金额",),
        # 联系手机 is deliberately not mapped: it is the consignee's phone (gifts, office
        # deliveries), usually masked, and a phone outranks the nick in identity resolution.
    }},
    {"orders": _convert_taobao_order},
)


# --- pos -------------------------------------------------------------------------------------

POS_STATUS = {
    "已完成": "completed", "完成": "completed", "已结账": "completed", "已结算": "completed",
    "正常": "completed", "成交": "completed", "已付款": "paid", "已支付": "paid",
    "待付款": "pending", "未付款": "pending", "挂单": "pending",
    "已取消": "closed", "取消": "closed", "作废": "closed", "已作废": "closed", "已关闭": "closed",
}
_TIME_ONLY = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")


def _combine(day: Any, time: Any) -> Any:
    """销售日期 + 销售时间 exported as two columns; the service parses the result."""
    day_text = f"{day:%Y-%m-%d}" if isinstance(day, dt.date) else str(day).strip()
    time_text = f"{time:%H:%M:%S}" if isinstance(time, dt.time) else str(time).strip()
    return f"{day_text} {time_text}"


def _is_time_only(value: Any) -> bool:
    if isinstance(value, dt.time):
        return True
    return isinstance(value, str) and bool(_TIME_ONLY.match(value.strip()))


def _convert_pos_order(data: dict[str, Any]) -> dict[str, Any]:
    day = data.pop("sale_date", None)
    moment = data.get("ordered_at")
    if day is not None and moment is None:
        data["ordered_at"] = day
    elif day is not None and _is_time_only(moment):
        data["ordered_at"] = _combine(day, moment)
    status = str(data.get("status", "")).strip()
    data["status"] = POS_STATUS.get(status, status) if status else "completed"
    if data["status"] in COUNTED and "ordered_at" in data:
        data.setdefault("paid_at", data["ordered_at"])  # paid at the till
    return data


_POS_MEMBER = {
    "member_code": ("会员编号", "会员编码", "会员号"),
    "pos_card": ("会员卡号", "卡号"),
    "phone": ("手机号", "手机", "手机号码", "会员手机", "联系电话"),
    "nick": ("买家会员名", "淘宝会员名", "淘宝昵称"),
    "unionid": ("unionid", "微信unionid"),
    "email": ("邮箱", "电子邮箱"),
    "name": ("姓名", "会员姓名", "会员名称"),
    "gender": ("性别",),
    "birthday": ("生日", "出生日期"),
    "city": ("城市", "所在城市"),
    "community": ("小区", "所在小区", "社区"),
    "house_number": ("房号", "门牌号"),
    "occupation": ("职业",),
    "source_channel": ("来源渠道", "来源"),
    "joined_at": ("入会时间", "注册时间", "开卡时间", "开卡日期"),
    "store": ("门店编码", "门店代码", "门店", "所属门店"),
    "guide": ("导购编码", "导购工号", "导购", "专属导购"),
}

POS = Preset(
    "pos", gettext_lazy("Generic POS export: receipts one line per row (单号/小票号…), member lists (手机号/姓名…)"),
    {
        "members": _POS_MEMBER,
        "orders": {
            "external_id": ("单号", "小票号", "销售单号", "单据号", "订单号", "流水号"),
            "channel": ("渠道编码", "渠道"),
            "pos_card": ("会员卡号", "卡号"),
            "phone": ("手机号", "会员手机", "手机号码"),
            "member_code": ("会员编号", "会员编码"),
            "store": ("门店编码", "门店代码", "店铺编码"),
            "guide": ("导购编码", "导购工号", "营业员编码"),
            "status": ("状态", "单据状态"),
            "paid_amount": ("实收金额", "实付金额", "实收"),
            "total_amount": ("应收金额", "原价金额", "订单金额"),
            "ordered_at": ("销售时间", "交易时间", "下单时间", "小票时间"),
            "sale_date": ("销售日期", "交易日期", "日期"),
            "line.sku": ("商品编码", "商品代码", "货号", "SKU", "条码"),
            "line.name": ("商品名称", "品名"),
            "line.quantity": ("数量", "销售数量"),
            "line.unit_price": ("单价", "售价", "零售价"),
            "line.amount": ("金额", "小计", "销售金额"),
        },
    },
    {"orders": _convert_pos_order},
    {"orders": ("sale_date",)},
)

PRESETS = {preset.name: preset for preset in (SIYU, TAOBAO, POS)}


def get_preset(name: str, entity: str) -> Preset:
    preset = PRESETS.get(name)
    if preset is None:
        raise ImportSetupError(_("unknown preset %(p)s; use one of: %(all)s")
                               % {"p": name, "all": ", ".join(PRESETS)}, code="unknown_preset")
    if not preset.supports(entity):
        raise ImportSetupError(_("the %(p)s preset has no layout for %(e)s; it reads: %(all)s")
                               % {"p": name, "e": entity, "all": ", ".join(preset.columns)},
                               code="unknown_preset")
    return preset
