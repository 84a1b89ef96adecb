"""The dashboard's tables as header + rows, for CSV and XLSX exports (numbers stay numbers)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from django.utils.translation import gettext as _

from siyu.analytics.metrics import (
    Filters,
    channel_mix,
    cohort_retention,
    league,
    loyalty,
    new_members,
    online_rate,
    repurchase,
    top_products,
    trend,
)
from siyu.analytics.metrics.sales import share_and_contribution
from siyu.analytics.models import RfmClass
from siyu.analytics.selectors import distribution


def _kpis(filters: Filters) -> tuple[list, list]:
    previous = filters.period.previous()
    share, parts = share_and_contribution(filters)
    share_before, parts_before = share_and_contribution(filters, previous)
    now = {**share, **parts, **new_members(filters),
           "repurchase": repurchase(filters)["rate"], "online_rate": online_rate(filters)["rate"]}
    before = {**share_before, **parts_before, **new_members(filters, previous),
              "repurchase": repurchase(filters, previous)["rate"], "online_rate": None}
    figures = [("amount", _("Sales")), ("by_amount", _("Member share (by amount)")),
               ("active_members", _("Active members")), ("frequency", _("Purchase frequency")),
               ("average_order_value", _("Average order value")), ("items_per_order", _("Items per order (连带率)")),
               ("contribution", _("Member contribution")), ("new_members", _("New members")),
               ("conversion_rate", _("First-order conversion (30 days)")), ("repurchase", _("Repurchase rate")),
               ("online_rate", _("Online rate"))]
    return ([_("figure"), _("this period"), _("previous period")],
            [[label, now[key], before[key]] for key, label in figures])


def _trend(filters: Filters):
    return ([_("day"), _("orders"), _("members' orders"), _("sales"), _("members' sales")],
            [[d["day"], d["orders"], d["member_orders"], d["amount"], d["member_amount"]] for d in trend(filters)])


def _channels(filters: Filters):
    return ([_("channel"), _("name"), _("orders"), _("members' orders"), _("sales"), _("share of sales")],
            [[c["channel"], c["name"], c["orders"], c["member_orders"], c["amount"], c["share_of_amount"]]
             for c in channel_mix(filters)])


def _cohorts(filters: Filters):
    table = cohort_retention(filters)
    months = table["months"]
    header = [_("cohort"), _("members")] + [_("month %(n)s") % {"n": k} for k in range(months)]
    return header, [[r["cohort"], r["members"], *r["retention"]] for r in table["cohorts"]]


def _rfm(filters: Filters):
    labels = dict(RfmClass.choices)
    rows = []
    for brand in distribution(brand_id=filters.brand.pk if filters.brand else None).values():
        rows.extend([brand["code"], str(labels[klass]), n] for klass, n in brand["rfm"].items())
    return [_("brand"), _("RFM class"), _("members")], rows


def _products(filters: Filters):
    return ([_("SKU"), _("name"), _("quantity"), _("sales"), _("orders")],
            [[p["sku"], p["name"], p["quantity"], p["amount"], p["orders"]] for p in top_products(filters, limit=100)])


def _league(filters: Filters):
    return ([_("store"), _("name"), _("members"), _("new members"), _("orders"), _("sales")],
            [[r["code"], r["name"], r["members"], r["new_members"], r["orders"], r["amount"]]
             for r in league(filters, limit=500)])


def _loyalty(filters: Filters):
    figures = loyalty.summary(filters)
    groups = {"points": figures["points"], "coupons": figures["coupons"], "coupon_sales": figures["coupon_sales"]}
    rows = [[label, groups[group]["period"][key], groups[group]["previous"][key]] for group, key, label in (
        ("points", "earned", _("points earned")), ("points", "redeemed", _("points redeemed")),
        ("points", "expired", _("points expired")), ("points", "reversed", _("points taken back on refunds")),
        ("points", "adjusted", _("points adjusted by staff")), ("points", "settled", _("points settling a debt")),
        ("points", "net_change", _("net change of points outstanding")),
        ("points", "active_members", _("active point users")),
        ("coupons", "issued", _("coupons issued")), ("coupons", "redeemed_of_issued", _("of those, redeemed")),
        ("coupons", "redemption_rate", _("coupon redemption rate")), ("coupons", "redeemed", _("coupons redeemed")),
        ("coupon_sales", "orders", _("orders with a coupon")), ("coupon_sales", "amount", _("coupon-driven sales")))]
    now = figures["balances"]
    rows += [[_("points outstanding (liability)"), now["outstanding"], None],
             [_("points owed by members"), now["owed"], None],
             [_("members holding points"), now["members_with_points"], None]]
    return [_("figure"), _("this period"), _("previous period")], rows


def _tiers(filters: Filters):
    return ([_("program"), _("tier"), _("name"), _("members"), _("share")],
            [[p["program"], t["tier"], t["name"], t["members"], t["share"]]
             for p in loyalty.tiers(filters) for t in p["tiers"]])


TABLES: dict[str, Callable[[Filters], tuple[list, list]]] = {
    "kpis": _kpis, "trend": _trend, "channels": _channels, "cohorts": _cohorts, "rfm": _rfm,
    "products": _products, "league": _league, "loyalty": _loyalty, "tiers": _tiers,
}


def to_csv(header: list, rows: list) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([str(h) for h in header])
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(header: list, rows: list, title: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.append([str(h) for h in header])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
