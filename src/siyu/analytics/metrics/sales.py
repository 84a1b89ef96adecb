"""Sales figures: member share, contribution and its decomposition, channel mix, daily trend,
weekday × hour, amount bands, new vs returning. Each is one or two aggregate queries."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, ExpressionWrapper, F, IntegerField, Q, Sum, Value, When
from django.db.models.expressions import BaseExpression
from django.db.models.functions import Coalesce

from siyu.analytics.metrics.filters import Filters, Period, local_day, local_hour, local_weekday, money, ratio
from siyu.commerce.models import Channel

NET = ExpressionWrapper(F("paid_amount") - F("refunded_amount"), output_field=DecimalField(max_digits=16,
                                                                                          decimal_places=2))
ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=16, decimal_places=2))
#: Lower bounds of the order amount bands (CNY); the last band is open.
AMOUNT_BANDS = (0, 50, 100, 200, 500, 1000, 2000, 5000)


def _sum(expression=NET, **filter_kw):
    return Coalesce(Sum(expression, filter=Q(**filter_kw) if filter_kw else None), ZERO)


def _summary(filters: Filters, period: Period | None = None) -> dict:
    """Everyone's and members' orders, amount and items: from the daily sales rollup when it can
    answer (whole days, no segment or member scope), else one scan of the orders, which also
    counts the distinct members (``active``)."""
    daily = filters.daily(period)
    if daily is not None:
        row = daily.aggregate(orders=Coalesce(Sum("orders"), 0), member_orders=Coalesce(Sum("member_orders"), 0),
                              amount=Coalesce(Sum("amount"), ZERO), member_amount=Coalesce(Sum("member_amount"), ZERO),
                              items=Coalesce(Sum("member_items"), 0))
    else:
        members = Q(member_id__isnull=False)
        row = filters.orders(period).aggregate(
            orders=Count("pk"), member_orders=Count("pk", filter=members), amount=_sum(),
            member_amount=_sum(member_id__isnull=False), active=Count("member_id", distinct=True),
            items=Coalesce(Sum("item_count", filter=members), 0))
    row["amount"], row["member_amount"] = money(row["amount"]), money(row["member_amount"])
    return row


def active_members(filters: Filters, period: Period | None = None) -> int:
    """Members with a counted order in the period (matching the filters)."""
    return filters.orders(period).filter(member_id__isnull=False).aggregate(
        n=Count("member_id", distinct=True))["n"]


def _with_active(row: dict, filters: Filters, period: Period | None, active: int | None) -> dict:
    if "active" not in row:
        row["active"] = active if active is not None else active_members(filters, period)
    return row


def _share(row: dict) -> dict:
    return {
        "orders": row["orders"], "member_orders": row["member_orders"],
        "amount": row["amount"], "member_amount": row["member_amount"],
        "by_orders": ratio(row["member_orders"], row["orders"]),
        "by_amount": ratio(row["member_amount"], row["amount"]),
    }


def _contribution(row: dict) -> dict:
    active, orders, amount, items = row["active"], row["member_orders"], row["member_amount"], row["items"]
    return {
        "active_members": active, "orders": orders, "amount": amount, "items": items,
        "frequency": ratio(orders, active),
        "average_order_value": ratio(amount, orders, Decimal("0.01")),
        "items_per_order": ratio(items, orders),
        "per_member": ratio(amount, active, Decimal("0.01")),
        "contribution": amount,
    }


def member_share(filters: Filters, period: Period | None = None) -> dict:
    """Orders and amount by members over all orders and amount. One query."""
    return _share(_summary(filters, period))


def contribution(filters: Filters, period: Period | None = None, *, active: int | None = None) -> dict:
    """Active members × purchase frequency × average order value (= members' amount), items per
    order, and the contribution per active member. ``active``: the period's active members when
    the caller has counted them already (:func:`~siyu.analytics.metrics.members.repurchase`'s
    ``buyers``)."""
    return _contribution(_with_active(_summary(filters, period), filters, period, active))


def share_and_contribution(filters: Filters, period: Period | None = None, *,
                           active: int | None = None) -> tuple[dict, dict]:
    """:func:`member_share` and :func:`contribution` from one reading (the dashboard shows both)."""
    row = _with_active(_summary(filters, period), filters, period, active)
    return _share(row), _contribution(row)


def shapley_split(before: tuple[Decimal, Decimal, Decimal], after: tuple[Decimal, Decimal, Decimal]) -> list[Decimal]:
    """Each factor's share of ``a1·f1·v1 − a0·f0·v0``: for three factors, factor ``x``'s effect is
    Δx · [(y0·z0 + y1·z1)/3 + (y0·z1 + y1·z0)/6]. The three effects add up to the change."""
    effects = []
    for i in range(3):
        j, k = [n for n in range(3) if n != i]
        y0, y1, z0, z1 = before[j], after[j], before[k], after[k]
        weight = (y0 * z0 + y1 * z1) / 3 + (y0 * z1 + y1 * z0) / 6
        effects.append((after[i] - before[i]) * weight)
    return effects


def _factors(row: dict) -> tuple[Decimal, Decimal, Decimal]:
    active, orders, amount = Decimal(row["active"]), Decimal(row["orders"]), row["amount"]
    return (active, orders / active if active else Decimal(0), amount / orders if orders else Decimal(0))


def split_change(before: dict, after: dict) -> dict:
    """Split the change of members' amount between two :func:`contribution` results (see
    :func:`contribution_change`)."""
    def parts(c: dict) -> dict:
        return {"active": c["active_members"], "orders": c["orders"], "amount": c["amount"]}
    before, after = parts(before), parts(after)
    effects = [money(e) for e in shapley_split(_factors(before), _factors(after))]
    change = after["amount"] - before["amount"]
    # rounding each effect to the cent may leave a cent over: give it to the largest effect
    rest = change - sum(effects)
    if rest:
        largest = max(range(3), key=lambda n: abs(effects[n]))
        effects[largest] += rest
    return {"before": before["amount"], "after": after["amount"], "change": change,
            "active_members_effect": effects[0], "frequency_effect": effects[1],
            "average_order_value_effect": effects[2]}


def contribution_change(filters: Filters, base: Period | None = None) -> dict:
    """The change of members' amount from ``base`` (default: the previous period) to the period,
    split between active members, frequency and average order value. Two queries."""
    base = base or filters.period.previous()
    return {"base_period": base.as_dict(), **split_change(contribution(filters, base), contribution(filters))}


def new_vs_returning(filters: Filters, period: Period | None = None) -> dict:
    """Members' orders and amount split by whether the member's first order ever falls in the period."""
    start, _end = (period or filters.period).bounds()
    new = Q(member__stats__first_order_at__gte=start)
    row = filters.orders(period).filter(member_id__isnull=False).aggregate(
        new_orders=Count("pk", filter=new), returning_orders=Count("pk", filter=~new),
        new_members=Count("member_id", filter=new, distinct=True),
        returning_members=Count("member_id", filter=~new, distinct=True),
        new_amount=Coalesce(Sum(NET, filter=new), ZERO), returning_amount=Coalesce(Sum(NET, filter=~new), ZERO))
    total = money(row["new_amount"]) + money(row["returning_amount"])
    return {
        "new": {"members": row["new_members"], "orders": row["new_orders"], "amount": money(row["new_amount"]),
                "share_of_amount": ratio(money(row["new_amount"]), total)},
        "returning": {"members": row["returning_members"], "orders": row["returning_orders"],
                      "amount": money(row["returning_amount"]),
                      "share_of_amount": ratio(money(row["returning_amount"]), total)},
    }


def _by(filters: Filters, period: Period | None, key: str, raw_key: BaseExpression | str) -> list[dict]:
    """Orders, members' orders, amount and members' amount grouped by ``key``: from the daily
    sales rollup when it can answer, else from the orders (grouped by ``raw_key``)."""
    daily = filters.daily(period)
    if daily is not None:
        return list(daily.filter(orders__gt=0).values(key).annotate(
            orders=Sum("orders"), member_orders=Sum("member_orders"), amount=Sum("amount"),
            member_amount=Sum("member_amount")))
    orders = filters.orders(period)
    if not isinstance(raw_key, str):
        orders = orders.annotate(**{key: raw_key})
    return list(orders.values(key).annotate(
        orders=Count("pk"), member_orders=Count("pk", filter=Q(member_id__isnull=False)), amount=_sum(),
        member_amount=_sum(member_id__isnull=False)))


def channel_mix(filters: Filters, period: Period | None = None) -> list[dict]:
    """Per channel with orders in the period, by amount (largest first)."""
    rows = _by(filters, period, "channel_id", "channel_id")
    channels = {c.pk: c for c in Channel.objects.filter(pk__in=[r["channel_id"] for r in rows])}
    total = sum((money(r["amount"]) for r in rows), Decimal("0.00"))
    result = [{"channel": channels[r["channel_id"]].code, "name": channels[r["channel_id"]].name,
               "kind": channels[r["channel_id"]].kind, "orders": r["orders"], "member_orders": r["member_orders"],
               "amount": money(r["amount"]), "share_of_amount": ratio(money(r["amount"]), total)} for r in rows]
    return sorted(result, key=lambda r: (-r["amount"], r["channel"]))


def trend(filters: Filters, period: Period | None = None) -> list[dict]:
    """One row per business day of the period (zeros included). One query."""
    period = period or filters.period
    rows = {}
    for r in _by(filters, period, "day", local_day("ordered_at")):
        day = r["day"] if isinstance(r["day"], dt.date) else dt.date.fromisoformat(r["day"])
        rows[day] = r
    days = []
    for n in range(period.days):
        day = period.start + dt.timedelta(days=n)
        row = rows.get(day, {})
        days.append({"day": day, "orders": row.get("orders", 0), "member_orders": row.get("member_orders", 0),
                     "amount": money(row.get("amount")), "member_amount": money(row.get("member_amount"))})
    return days


def hours(filters: Filters, period: Period | None = None) -> list[dict]:
    """Orders and amount per (ISO weekday, hour) in business time; only the cells with orders."""
    rows = (filters.orders(period).annotate(weekday=local_weekday("ordered_at"), hour=local_hour("ordered_at"))
            .values("weekday", "hour").annotate(orders=Count("pk"), amount=_sum()))
    return sorted(({"weekday": r["weekday"], "hour": r["hour"], "orders": r["orders"], "amount": money(r["amount"])}
                   for r in rows), key=lambda r: (r["weekday"], r["hour"]))


def amount_histogram(filters: Filters, period: Period | None = None, bands=AMOUNT_BANDS) -> list[dict]:
    """Orders per amount band ``[lower, next lower)``; every band present, zeros included."""
    whens = [When(net__gte=Decimal(lower), then=Value(n)) for n, lower in reversed(list(enumerate(bands)))]
    rows = dict(filters.orders(period).annotate(net=NET).annotate(
        band=Case(*whens, default=Value(0), output_field=IntegerField()))
        .values("band").annotate(n=Count("pk")).values_list("band", "n"))
    total = sum(rows.values())
    return [{"from": Decimal(lower), "to": Decimal(upper) if upper is not None else None,
             "orders": rows.get(n, 0), "share": ratio(rows.get(n, 0), total)}
            for n, (lower, upper) in enumerate(itertools.zip_longest(bands, bands[1:]))]


def geography(filters: Filters, period: Period | None = None) -> dict:
    """Orders and amount per region and per city of the store the order was placed in (orders
    without a store, or a store without a region or city, under ``""``). Two queries."""
    result = {}
    for key, column in (("regions", "store__region__code"), ("cities", "store__city")):
        rows = filters.orders(period).values(column).annotate(orders=Count("pk"), amount=_sum())
        result[key] = sorted(({"name": r[column] or "", "orders": r["orders"], "amount": money(r["amount"])}
                              for r in rows), key=lambda r: (-r["amount"], r["name"]))
    return result
