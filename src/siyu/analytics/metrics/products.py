"""Product and league tables: top sellers, sales by product role, store and guide leagues."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from siyu.analytics.metrics.filters import Filters, Period, money
from siyu.analytics.metrics.sales import NET, ZERO
from siyu.commerce.models import OrderLine, ProductRole
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


__all__ = ["league", "product_roles", "top_products"]
