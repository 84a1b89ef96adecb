"""Product and league tables: top sellers, sales by product role, store and guide leagues."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, DecimalField, F, Max, Q, Sum, Value
from django.db.models.functions import Coalesce

from siyu.analytics.metrics.filters import Filters, Period, money, ratio
from siyu.analytics.metrics.sales import NET, ZERO
from siyu.commerce.models import OrderLine, Product, ProductRole
from siyu.org.models import Staff, Store

LINE_ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=16, decimal_places=2))


def _lines(filters: Filters, period: Period | None):
    return OrderLine.objects.filter(order__in=filters.orders(period).values("pk")).order_by()


def top_products(filters: Filters, period: Period | None = None, *, limit: int = 10) -> list[dict]:
    """Products (by SKU; lines without a product by their SKU text) with the largest line amount."""
    rows = (_lines(filters, period).values("sku").annotate(
        name=Coalesce("product__name", "name"), quantity=Sum("quantity"),
        amount=Coalesce(Sum("amount"), LINE_ZERO), orders=Count("order_id", distinct=True))
        .order_by("-amount", "sku")[:limit])
    return [{"sku": r["sku"], "name": r["name"], "quantity": r["quantity"], "amount": money(r["amount"]),
             "orders": r["orders"]} for r in rows]


def product_roles(filters: Filters, period: Period | None = None) -> list[dict]:
    """Quantity and amount per product role; lines without a known product under ``""``."""
    found = {r["product__role"] or "": r for r in _lines(filters, period).values("product__role").annotate(
        quantity=Sum("quantity"), amount=Coalesce(Sum("amount"), LINE_ZERO))}
    result = []
    for role, label in [*ProductRole.choices, ("", "—")]:
        row = found.get(role)
        if row is None and role == "":
            continue
        result.append({"role": role, "label": str(label), "quantity": row["quantity"] if row else 0,
                       "amount": money(row["amount"]) if row else Decimal("0.00")})
    return result


def co_purchase(filters: Filters, period: Period | None = None, *, limit: int = 20, min_orders: int = 2) -> dict:
    """Products bought together (in one order) in the period: for each pair {A, B} seen in at
    least ``min_orders`` orders, support = orders with both / orders with products, confidence
    A→B = orders with both / orders with A, lift = confidence A→B / (orders with B / orders).
    Three queries; lines without a known product are left out."""
    orders = filters.orders(period).values("pk")
    lines = OrderLine.objects.filter(order__in=orders, product_id__isnull=False).order_by()
    total = lines.values("order_id").distinct().count()
    per_product = dict(lines.values("product_id").annotate(n=Count("order_id", distinct=True))
                       .values_list("product_id", "n"))
    pairs = (OrderLine.objects.filter(order__in=orders, product_id__isnull=False).order_by()
             .filter(order__lines__product_id__gt=F("product_id"))
             .values("product_id", "order__lines__product_id")
             .annotate(n=Count("order_id", distinct=True)).filter(n__gte=min_orders)
             .values_list("product_id", "order__lines__product_id", "n"))
    skus = dict(Product.objects.filter(pk__in=per_product).values_list("pk", "sku"))
    rows = []
    for a, b, n in pairs:
        rows.append({"a": skus[a], "b": skus[b], "orders": n, "support": ratio(n, total),
                     "confidence_a_b": ratio(n, per_product[a]), "confidence_b_a": ratio(n, per_product[b]),
                     "lift": ratio(Decimal(n) * total, Decimal(per_product[a]) * per_product[b])})
    rows.sort(key=lambda r: (-r["orders"], r["a"], r["b"]))
    return {"orders": total, "pairs": rows[:limit]}


def product_repurchase(filters: Filters, period: Period | None = None, *, limit: int = 20,
                       min_buyers: int = 2) -> list[dict]:
    """Per product: members who bought it in the period, those who bought it in two or more
    orders, and the rate (highest first; products with at least ``min_buyers`` buyers). Two queries."""
    per_member = (OrderLine.objects.filter(order__in=filters.orders(period).filter(member_id__isnull=False)
                                           .values("pk"), product_id__isnull=False).order_by()
                  .values("product_id", "order__member_id").annotate(n=Count("order_id", distinct=True)))
    buyers: dict[int, list[int]] = {}
    for row in per_member:
        counts = buyers.setdefault(row["product_id"], [0, 0])
        counts[0] += 1
        counts[1] += row["n"] >= 2
    skus = dict(Product.objects.filter(pk__in=buyers).values_list("pk", "sku"))
    rows = [{"sku": skus[p], "buyers": n, "repeat_buyers": again, "rate": ratio(again, n)}
            for p, (n, again) in buyers.items() if n >= min_buyers]
    rows.sort(key=lambda r: (-r["rate"], -r["buyers"], r["sku"]))
    return rows[:limit]


def slow_movers(filters: Filters, *, days: int = 30, limit: int = 50) -> list[dict]:
    """Active (listed) products with no counted sale, matching the filters, in the ``days``
    business days up to the period's end; with their last sale before that, if any. Two queries."""
    end = filters.period.end
    recent = Period(end - dt.timedelta(days=days), end)
    sold = OrderLine.objects.filter(order__in=filters.orders(recent).values("pk"), product_id__isnull=False)
    idle = Product.objects.filter(is_active=True).exclude(pk__in=sold.values("product_id")).order_by("sku")
    idle = list(idle.values("pk", "sku", "name", "role")[:limit])
    last = dict(OrderLine.objects.filter(product_id__in=[p["pk"] for p in idle],
                                         order__in=filters.orders(timed=False).values("pk")).order_by()
                .values("product_id").annotate(at=Max("order__ordered_at")).values_list("product_id", "at"))
    return [{"sku": p["sku"], "name": p["name"], "role": p["role"], "last_sold_at": last.get(p["pk"])}
            for p in idle]


def league(filters: Filters, period: Period | None = None, *, by: str = "store", limit: int = 20) -> list[dict]:
    """Per owning store (``by="store"``) or guide (``"guide"``): members owned now, new members
    in the period, and the orders and amount of their members in the period. Three queries."""
    if by not in ("store", "guide"):
        raise ValueError(by)
    start, end = (period or filters.period).bounds()
    column = f"{by}_id"
    members = filters.members().exclude(**{f"{column}__isnull": True})
    owned = {r[column]: r for r in members.values(column).annotate(
        members=Count("pk"), new_members=Count("pk", filter=Q(joined_at__gte=start, joined_at__lt=end)))}
    member_column = f"member__{by}_id"
    sales = {r[member_column]: r for r in filters.orders(period).exclude(**{f"{member_column}__isnull": True})
             .values(member_column).annotate(orders=Count("pk"), amount=Coalesce(Sum(NET), ZERO))}
    keys = set(owned) | set(sales)
    model = Store if by == "store" else Staff
    names = {pk: (code, name) for pk, code, name in model.objects.filter(pk__in=keys).values_list("pk", "code", "name")}
    rows = [{"code": names[k][0], "name": names[k][1], "members": owned.get(k, {}).get("members", 0),
             "new_members": owned.get(k, {}).get("new_members", 0), "orders": sales.get(k, {}).get("orders", 0),
             "amount": money(sales.get(k, {}).get("amount"))} for k in keys if k in names]
    return sorted(rows, key=lambda r: (-r["amount"], -r["members"], r["code"]))[:limit]


__all__ = ["co_purchase", "league", "product_repurchase", "product_roles", "slow_movers", "top_products"]
