"""The console's home: the operator's dashboard (unfold's ``DASHBOARD_CALLBACK``).

Headline KPIs with their change against the previous period of the same length, the daily
trend, channel mix, cohort heat map, RFM grid and lifecycle, narrowed by the filters in the
query string and by the user's data scope. Every table exports to CSV or XLSX through
``siyu.analytics.views``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from siyu.analytics.metrics import (
    Filters,
    Period,
    channel_mix,
    cohort_retention,
    loyalty,
    new_members,
    online_rate,
    repurchase,
    resolve_filters,
    trend,
)
from siyu.analytics.metrics.definitions import DEFINITIONS
from siyu.analytics.metrics.sales import share_and_contribution, split_change
from siyu.analytics.models import RfmClass
from siyu.analytics.selectors import distribution
from siyu.commerce.models import Channel
from siyu.console.base import request_staff
from siyu.core.errors import SiyuError
from siyu.org.models import Brand, Region, Store

FILTER_NAMES = ("start", "end", "brand", "region", "store", "channel")
#: Cohort months the dashboard's heat map shows (ending with the period's last month).
COHORT_MONTHS = 6
#: The RFM grid as the classic 2 × 4 layout: rows by monetary value, columns by R and F.
RFM_GRID = [
    [RfmClass.IMPORTANT_VALUE, RfmClass.IMPORTANT_DEVELOP, RfmClass.IMPORTANT_KEEP, RfmClass.IMPORTANT_RETAIN],
    [RfmClass.GENERAL_VALUE, RfmClass.GENERAL_DEVELOP, RfmClass.GENERAL_KEEP, RfmClass.GENERAL_RETAIN],
]


# --- numbers for the locale ----------------------------------------------------------------------
# zh-hans and en both write 1,234,567.89 (Django's zh-hans formats do not group digits, so the
# grouping is done here); money in yuan with ¥, rates as percentages with one decimal.

def yuan(value: Decimal | None) -> str:
    if value is None:
        return "–"
    value = Decimal(value)
    return f"{'-' if value < 0 else ''}¥{abs(value):,.2f}"


def integer(value) -> str:
    return "–" if value is None else f"{int(value):,}"


def decimal(value, places: int = 2) -> str:
    return "–" if value is None else f"{Decimal(value):,.{places}f}"


def percent(value: Decimal | None) -> str:
    return "–" if value is None else f"{Decimal(value) * 100:.1f}%"


def _signed(value: Decimal) -> str:
    return f"{value:+,.1f}" if value else "0.0"


def _change(now, before, *, rate: bool = False) -> dict | None:
    """The change against the previous period: percentage points for rates, percent otherwise."""
    if now is None or before is None:
        return None
    if rate:
        points = (Decimal(now) - Decimal(before)) * 100
        return {"up": points > 0, "down": points < 0, "text": _("%(n)s pp") % {"n": _signed(points)}}
    if not before:
        return None
    # against the size of the figure before, so that a negative one (a net change of points) that
    # rises reads as up
    relative = (Decimal(now) - Decimal(before)) / abs(Decimal(before)) * 100
    return {"up": relative > 0, "down": relative < 0, "text": f"{_signed(relative)}%"}


def _kpi(key: str, label: str, now, before, formatter, *, rate: bool = False, definition_key: str = "") -> dict:
    title_def = DEFINITIONS.get(definition_key or key)
    return {"key": key, "label": label, "value": formatter(now), "raw": "" if now is None else str(now),
            "change": _change(now, before, rate=rate), "help": str(title_def[1]) if title_def else ""}


# --- the filters ----------------------------------------------------------------------------------

def filters_from_request(request: HttpRequest) -> tuple[Filters, list[str]]:
    """The dashboard's filters from the query string, narrowed to the user's data scope; bad
    values are dropped with a message rather than failing the page."""
    errors: list[str] = []
    values = {name: (request.GET.get(name) or "").strip() for name in FILTER_NAMES}
    dates: dict[str, dt.date | None] = {}
    for name in ("start", "end"):
        try:
            dates[name] = dt.date.fromisoformat(values[name]) if values[name] else None
        except ValueError:
            errors.append(_("%(field)s: not a date (YYYY-MM-DD)") % {"field": name})
            dates[name] = None
    codes = {name: values[name] or None for name in ("brand", "region", "store", "channel")}
    everyone = request.user.is_superuser
    staff = None if everyone else request_staff(request)
    while True:
        try:
            return resolve_filters(**dates, **codes, staff=staff, everyone=everyone), errors
        except SiyuError as error:
            errors.append(f"{error.field}: {error.message}")
            if error.field in codes and codes[error.field] is not None:
                codes[error.field] = None
            else:
                dates = {"start": None, "end": None}


def _choices(model, selected: Filters, name: str) -> list[dict]:
    chosen = getattr(selected, name)
    return [{"code": code, "name": label, "selected": chosen is not None and chosen.code == code}
            for code, label in model.objects.order_by("code").values_list("code", "name")]


# --- the page -------------------------------------------------------------------------------------

def dashboard_context(request: HttpRequest) -> dict:
    if not request.user.has_perm("commerce.view_order"):
        raise PermissionDenied
    filters, errors = filters_from_request(request)
    previous = filters.period.previous()

    # repurchase counts the period's buyers, who are its active members
    again, again_before = repurchase(filters), repurchase(filters, previous)
    share, parts = share_and_contribution(filters, active=again["buyers"])
    share_before, parts_before = share_and_contribution(filters, previous, active=again_before["buyers"])
    new, new_before = new_members(filters), new_members(filters, previous)
    online = online_rate(filters)
    kpis = [
        _kpi("amount", _("Sales"), share["amount"], share_before["amount"], yuan, definition_key="member_share"),
        _kpi("member_share", _("Member share (by amount)"), share["by_amount"], share_before["by_amount"], percent,
             rate=True),
        _kpi("active_members", _("Active members"), parts["active_members"], parts_before["active_members"], integer,
             definition_key="contribution"),
        _kpi("frequency", _("Purchase frequency"), parts["frequency"], parts_before["frequency"], decimal,
             definition_key="contribution"),
        _kpi("aov", _("Average order value"), parts["average_order_value"], parts_before["average_order_value"], yuan,
             definition_key="contribution"),
        _kpi("items_per_order", _("Items per order (连带率)"), parts["items_per_order"],
             parts_before["items_per_order"], decimal, definition_key="contribution"),
        _kpi("contribution", _("Member contribution"), parts["contribution"], parts_before["contribution"], yuan),
        _kpi("new_members", _("New members"), new["new_members"], new_before["new_members"], integer),
        _kpi("conversion", _("First-order conversion (30 days)"), new["conversion_rate"],
             new_before["conversion_rate"], percent, rate=True, definition_key="new_members"),
        _kpi("repurchase", _("Repurchase rate"), again["rate"], again_before["rate"], percent, rate=True),
        _kpi("online_rate", _("Online rate"), online["rate"], None, percent, rate=True),
    ]

    split = split_change(parts_before, parts)
    moved = [{"label": label, "value": yuan(split[key]), "up": split[key] > 0, "down": split[key] < 0}
             for key, label in (("active_members_effect", _("Active members")),
                                ("frequency_effect", _("Purchase frequency")),
                                ("average_order_value_effect", _("Average order value")))]
    orders_link, members_link = _drill_links(filters)
    for item in kpis:
        item["link"] = members_link if item["key"] in ("new_members", "conversion", "online_rate") else orders_link
        if item["key"] == "online_rate":
            item["link"] = reverse("admin:members_member_changelist")

    days = trend(filters)
    channels = channel_mix(filters)
    last = filters.period.end - dt.timedelta(days=1)
    first_month = dt.date(last.year, last.month, 1)
    for _n in range(COHORT_MONTHS - 1):
        first_month = dt.date(first_month.year - (first_month.month == 1), (first_month.month - 2) % 12 + 1, 1)
    cohorts = cohort_retention(filters.with_period(Period(first_month, filters.period.end)))
    rfm = _rfm_grid(filters)
    order_link = reverse("admin:commerce_order_changelist")
    query = filters.query_string()
    for row in channels:
        row["amount_text"], row["share_text"] = yuan(row["amount"]), percent(row["share_of_amount"])
        row["orders_text"] = integer(row["orders"])
        row["link"] = order_link + "?" + urlencode({
            "channel__id__exact": Channel.objects.filter(code=row["channel"]).values_list("pk", flat=True).first(),
            "ordered_at_from": filters.period.start.isoformat(), "ordered_at_to": last.isoformat()})
    for row in cohorts["cohorts"]:
        row["cells"] = [{"rate": r, "text": percent(r), "alpha": float(r or 0)} for r in row["retention"]]
        row["members_text"] = integer(row["members"])

    chart_trend = {
        "labels": [d["day"].isoformat() for d in days],
        "datasets": [
            {"label": str(_("Sales")), "data": [str(d["amount"]) for d in days], "yAxisID": "y", "kind": "money"},
            {"label": str(_("Members' sales")), "data": [str(d["member_amount"]) for d in days], "yAxisID": "y",
             "kind": "money"},
            {"label": str(_("Orders")), "data": [d["orders"] for d in days], "yAxisID": "y1", "kind": "count"},
        ],
    }
    chart_channels = {"labels": [c["name"] for c in channels],
                      "datasets": [{"label": str(_("Sales")), "data": [str(c["amount"]) for c in channels],
                                    "kind": "money"}]}
    return {
        "filters": filters,
        "query": query,
        "errors": errors,
        **_headings(filters),
        "start": filters.period.start.isoformat(),
        "end": last.isoformat(),
        "brands": _choices(Brand, filters, "brand"),
        "regions": _choices(Region, filters, "region"),
        "stores": _choices(Store, filters, "store"),
        "channels_choices": _choices(Channel, filters, "channel"),
        "kpis": kpis,
        "channels": channels,
        "cohorts": cohorts,
        "rfm": rfm,
        "moved": {"change": yuan(split["change"]), "effects": moved},
        "may_segment": request.user.has_perm("segments.add_segment"),
        "online": {name: percent(v["rate"]) for name, v in online["by_channel"].items()},
        "chart_trend": json.dumps(chart_trend, ensure_ascii=False),
        "chart_channels": json.dumps(chart_channels, ensure_ascii=False),
        # the loyalty figures (sums over the points ledger) load after the page: loyalty_section_context
        "loyalty_url": (reverse("analytics:loyalty_section") + "?" + query) if loyalty.loyalty_exists() else None,
    }


def loyalty_section_context(request: HttpRequest) -> dict:
    """The dashboard's loyalty section for the same filters (``None`` without a program): the
    page asks for it once it is shown, so the ledger's sums never hold up the sales figures."""
    if not request.user.has_perm("commerce.view_order"):
        raise PermissionDenied
    if not loyalty.loyalty_exists():
        return {"loyalty": None}
    filters, _errors = filters_from_request(request)
    return {"loyalty": _loyalty_section(filters), "query": filters.query_string(), **_headings(filters)}


def _headings(filters: Filters) -> dict:
    """What the page and its loyalty section head their sections with: the period, the one it is
    compared with, and every figure's definition (shown on hover)."""
    previous, last = filters.period.previous(), filters.period.end - dt.timedelta(days=1)
    return {
        "period_label": f"{filters.period.start.isoformat()} – {last.isoformat()}",
        "previous_label": f"{previous.start.isoformat()} – {(previous.end - dt.timedelta(days=1)).isoformat()}",
        "definitions": {key: {"title": str(t), "text": str(d)} for key, (t, d) in DEFINITIONS.items()},
    }


def _loyalty_section(filters: Filters) -> dict:
    """The loyalty figures of the period with their change (the figures of now without), and the
    members per tier of each program, each tier linking to its members' tier rows."""
    figures = loyalty.summary(filters)
    points, now = figures["points"], figures["balances"]
    coupons, sales = figures["coupons"], figures["coupon_sales"]
    ledger = reverse("admin:loyalty_pointsentry_changelist")
    coupon_list = reverse("admin:loyalty_coupon_changelist")
    accounts = reverse("admin:loyalty_pointsaccount_changelist")

    def period(key, label, group, name, formatter=integer, *, rate=False, definition_key="loyalty_points",
               link=ledger):
        item = _kpi(f"loyalty_{key}", label, group["period"][name], group["previous"][name], formatter, rate=rate,
                    definition_key=definition_key)
        return {**item, "link": link}

    def current(key, label, value, formatter=integer):
        return {**_kpi(f"loyalty_{key}", label, value, None, formatter, definition_key="loyalty_points"),
                "link": accounts}

    cards = [
        period("earned", _("Points earned"), points, "earned"),
        period("redeemed", _("Points redeemed"), points, "redeemed"),
        period("expired", _("Points expired"), points, "expired"),
        period("reversed", _("Points taken back on refunds"), points, "reversed"),
        period("net_change", _("Net change of points outstanding"), points, "net_change"),
        period("active_members", _("Active point users"), points, "active_members"),
        current("outstanding", _("Points outstanding (liability)"), now["outstanding"]),
        current("members_with_points", _("Members holding points"), now["members_with_points"]),
        current("owed", _("Points owed by members (欠分)"), now["owed"]),
        period("coupons_issued", _("Coupons issued"), coupons, "issued", definition_key="loyalty_coupons",
               link=coupon_list),
        period("coupons_redeemed", _("Coupons redeemed"), coupons, "redeemed", definition_key="loyalty_coupons",
               link=coupon_list),
        period("redemption_rate", _("Coupon redemption rate"), coupons, "redemption_rate", percent, rate=True,
               definition_key="loyalty_coupons", link=coupon_list),
        period("coupon_sales", _("Coupon-driven sales"), sales, "amount", yuan, definition_key="loyalty_coupons",
               link=coupon_list),
        period("coupon_orders", _("Orders with a coupon"), sales, "orders", definition_key="loyalty_coupons",
               link=coupon_list),
    ]
    tier_list = reverse("admin:loyalty_membertier_changelist")
    programs = loyalty.tiers(filters)
    for program in programs:
        program["members_text"] = integer(program["members"])
        for row in program["tiers"]:
            row["members_text"], row["share_text"] = integer(row["members"]), percent(row["share"])
            row["link"] = tier_list + "?" + urlencode({"program__id__exact": program["program_id"],
                                                       "tier__id__exact": row["tier_id"]})
    return {"cards": cards, "programs": programs}


def _drill_links(filters: Filters) -> tuple[str, str]:
    """The order list of the period (with the channel and store, which it can filter on) and the
    member list of the members who joined in it."""
    last = (filters.period.end - dt.timedelta(days=1)).isoformat()
    orders = {"ordered_at_from": filters.period.start.isoformat(), "ordered_at_to": last}
    members = {"joined_at_from": filters.period.start.isoformat(), "joined_at_to": last}
    if filters.channel is not None:
        orders["channel__id__exact"] = filters.channel.pk
    if filters.store is not None:
        orders["store__id__exact"] = members["store__id__exact"] = filters.store.pk
    return (reverse("admin:commerce_order_changelist") + "?" + urlencode(orders),
            reverse("admin:members_member_changelist") + "?" + urlencode(members))


def _rfm_grid(filters: Filters) -> dict:
    """Members per RFM class (summed over brands unless one is chosen), laid out as the grid."""
    counts = distribution(brand_id=filters.brand.pk if filters.brand else None)
    totals = dict.fromkeys(RfmClass.values, 0)
    for row in counts.values():
        for klass, n in row["rfm"].items():
            totals[klass] += n
    link = reverse("admin:analytics_memberrfm_changelist")
    labels = dict(RfmClass.choices)
    brand_param = {"brand__id__exact": filters.brand.pk} if filters.brand else {}
    rows = [[{"class": klass, "label": str(labels[klass]), "count": totals[klass], "text": integer(totals[klass]),
              "link": link + "?" + urlencode({**brand_param, "rfm_class__exact": klass})} for klass in row]
            for row in RFM_GRID]
    return {"rows": rows, "total": integer(sum(totals.values()))}


def dashboard_callback(request: HttpRequest, context: dict) -> dict:
    """unfold's ``DASHBOARD_CALLBACK``: the dashboard for users who may view orders; the plain
    app list for everyone else."""
    if request.user.has_perm("commerce.view_order"):
        context["dashboard"] = dashboard_context(request)
        context["title"] = _("Dashboard")
    return context
