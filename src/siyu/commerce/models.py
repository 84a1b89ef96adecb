"""Omni-channel commerce (全渠道销售体系): channels, products, orders, refunds, member stats."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.members.models import IdentityKind, Member
from siyu.org.models import Staff, Store

MONEY = {"max_digits": 14, "decimal_places": 2}


class ChannelKind(models.TextChoices):
    STORE = "store", _("physical store POS")
    BRAND_MALL = "brand_mall", _("brand mall")
    MINI_PROGRAM = "mini_program", _("mini-program mall")
    POINTS_MALL = "points_mall", _("points mall")
    DISTRIBUTION = "distribution", _("distribution mall")
    LIVESTREAM = "livestream", _("livestream shop")
    MARKETPLACE = "marketplace", _("third-party marketplace")


class Channel(models.Model):
    """A sales channel, e.g. one store's POS, the Tmall flagship shop, the mini-program mall."""

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices, db_index=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="channels")
    platform = models.CharField(_("platform"), max_length=30, blank=True,
                                help_text=_("e.g. tmall, taobao, jd, douyin, youzan"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("sales channel")
        verbose_name_plural = _("sales channels")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class ProductRole(models.TextChoices):
    TRAFFIC = "traffic", _("traffic (引流款)")
    TRIAL = "trial", _("new-user trial")
    MAIN = "main", _("main (主推款)")
    HOT = "hot", _("hot (爆款)")
    MEMBER_BENEFIT = "member_benefit", _("member benefit")
    CLEARANCE = "clearance", _("clearance")
    FLASH_SALE = "flash_sale", _("flash sale")
    BUNDLE = "bundle", _("bundle")


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=100, blank=True, db_index=True)
    price = models.DecimalField(_("list price"), **MONEY, default=0)
    role = models.CharField(_("product role"), max_length=20, choices=ProductRole.choices,
                            default=ProductRole.MAIN, db_index=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("awaiting payment")
    PAID = "paid", _("paid")
    SHIPPED = "shipped", _("shipped")
    COMPLETED = "completed", _("completed")
    CLOSED = "closed", _("closed")


#: Statuses whose orders count as sales in member stats and analytics.
COUNTED_STATUSES = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.COMPLETED)


class Order(models.Model):
    """An order from any channel; ``(channel, external_id)`` is its natural key.

    An order whose buyer is not yet a member keeps the buyer identity and binds to the member
    when that identity becomes known.
    """

    # No database constraints on the channel, store and guide: their checks ran once per order
    # at every batch's commit. Ingestion holds the rows it resolves until it commits (by_code(hold=
    # True)), and deleting them goes through Django's PROTECT / SET_NULL.
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.PROTECT,
                                related_name="orders", db_index=False, db_constraint=False)
    external_id = models.CharField(_("external order id"), max_length=64)
    member = models.ForeignKey(Member, verbose_name=_("member"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="orders", db_index=False)
    buyer_kind = models.CharField(_("buyer identity kind"), max_length=10, blank=True,
                                  choices=IdentityKind.choices)
    buyer_value = models.CharField(_("buyer identity"), max_length=191, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=OrderStatus.choices,
                              default=OrderStatus.PAID)
    is_counted = models.BooleanField(_("counts as a sale"), default=True)
    total_amount = models.DecimalField(_("order amount"), **MONEY, default=0)
    paid_amount = models.DecimalField(_("paid amount"), **MONEY)
    refunded_amount = models.DecimalField(_("refunded amount"), **MONEY, default=0)
    item_count = models.PositiveIntegerField(_("items"), default=0)
    ordered_at = models.DateTimeField(_("ordered at"), db_index=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    store = models.ForeignKey(Store, verbose_name=_("store"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="orders", db_constraint=False)
    guide = models.ForeignKey(Staff, verbose_name=_("guide"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="orders", db_index=False, db_constraint=False)
    created_at = models.DateTimeField(_("received at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-ordered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="order_channel_external_unique"),
            models.CheckConstraint(condition=Q(paid_amount__gte=0), name="order_paid_not_negative"),
            models.CheckConstraint(condition=Q(refunded_amount__lte=models.F("paid_amount")),
                                   name="order_refund_within_paid"),
        ]
        indexes = [
            models.Index(fields=["member", "ordered_at"], name="order_member_time"),
            models.Index(fields=["channel", "ordered_at"], name="order_channel_time"),
            # Partial indexes: most orders have no guide (online shops), and a buyer identity is
            # looked up only while the order waits for its member (binding, search by nick); an
            # order leaves these indexes, or never enters them, and no ingested row pays for them.
            # MySQL has no partial indexes and indexes every row (models.W037 is silenced).
            models.Index(fields=["guide"], condition=Q(guide__isnull=False), name="order_guide"),
            models.Index(fields=["buyer_kind", "buyer_value"], condition=Q(member__isnull=True),
                         name="order_waiting_buyer"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}/{self.external_id}"

    @property
    def net_amount(self):
        return self.paid_amount - self.refunded_amount


class OrderLine(models.Model):
    # No database constraint on the order: its check ran once per line at every batch's commit
    # (3,000 a batch in the ingest bench, ~8 µs each). Lines are written only with their order:
    # in the transaction that inserts it, or while ingestion holds it locked to replace them;
    # deleting an order goes through Django's CASCADE, which deletes its lines first.
    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE,
                              related_name="lines", db_index=False, db_constraint=False)
    line_no = models.PositiveIntegerField(_("line"))
    # The line keeps its SKU; the product is that SKU resolved when the line arrived. No database
    # constraint: its check ran once per line at every batch's commit (0.7 s of the ingest bench's
    # 300,000 lines). Ingestion holds the products it resolves until it commits (ids_by(hold=True)),
    # and deleting a product goes through Django's PROTECT, which then sees the lines.
    product = models.ForeignKey(Product, verbose_name=_("product"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="order_lines", db_constraint=False)
    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    name = models.CharField(_("product name"), max_length=200, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), **MONEY, default=0)
    amount = models.DecimalField(_("amount"), **MONEY)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        constraints = [
            models.UniqueConstraint(fields=["order", "line_no"], name="order_line_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.line_no} {self.name or self.sku} × {self.quantity}"


class Refund(models.Model):
    """A full or partial refund of an order; ``(order, external_id)`` is its natural key."""

    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE,
                              related_name="refunds", db_index=False, db_constraint=False)  # as OrderLine.order
    external_id = models.CharField(_("external refund id"), max_length=64)
    amount = models.DecimalField(_("amount"), **MONEY)
    refunded_at = models.DateTimeField(_("refunded at"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.UniqueConstraint(fields=["order", "external_id"], name="refund_order_external_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} −{self.amount}"


class MemberStats(models.Model):
    """Per-member order aggregates, maintained in the same transaction as every batch."""

    # A derived row, like the channel stats and rollups: its key is not checked by the database
    # (a check per new buyer at every batch's commit); deleting a member deletes it through the ORM.
    member = models.OneToOneField(Member, verbose_name=_("member"), primary_key=True,
                                  on_delete=models.CASCADE, related_name="stats", db_constraint=False)
    # Every batch rewrites its buyers' rows, and each index costs every rewrite an entry: 0.5 s of
    # the 20 s ingest bench for the two dropped. The times serve cohorts, new-buyer counts and
    # the stats list's date filter; nothing selects by a range of counts or amounts, and sorting
    # a list by them is one top-N pass over the rows (the members list reaches them through an
    # outer join, which an index on this table cannot order anyway).
    first_order_at = models.DateTimeField(_("first order"), null=True, db_index=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, db_index=True)
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    item_count = models.PositiveIntegerField(_("items"), default=0)
    total_paid = models.DecimalField(_("paid, net of refunds"), **MONEY, default=0)
    total_refunded = models.DecimalField(_("refunded"), **MONEY, default=0)

    class Meta:
        verbose_name = _("member stats")
        verbose_name_plural = _("member stats")

    def __str__(self) -> str:
        return f"{self.member_id}: {self.order_count} / {self.total_paid}"


class MemberChannelStats(models.Model):
    # Derived rows, as the sales rollups: counted from orders whose member and channel ingestion has
    # checked, so the new (member, channel) pairs of a batch take no foreign-key checks at its
    # commit (6-7 ms a batch of 1,000 orders). Deleting a member or channel still removes them (Django cascades).
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE,
                               related_name="channel_stats", db_index=False, db_constraint=False)
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.CASCADE,
                                related_name="+", db_constraint=False)
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    total_paid = models.DecimalField(_("paid, net of refunds"), **MONEY, default=0)
    last_order_at = models.DateTimeField(_("last order"), null=True)

    class Meta:
        verbose_name = _("member channel stats")
        verbose_name_plural = _("member channel stats")
        constraints = [
            models.UniqueConstraint(fields=["member", "channel"], name="member_channel_stats_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.channel_id}: {self.order_count}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        """Merges recompute channel stats from the moved orders; nothing to move."""
        return cls.objects.filter(member_id=merged_id).delete()[0]


class DailySales(models.Model):
    """Counted orders per business day, channel and store (销售日汇总), kept in step with the
    orders in the same transaction as every batch (:mod:`siyu.commerce.rollups`): the
    dashboard's sales, member share, trend and channel mix read these rows instead of the orders.
    Amounts are net of refunds; ``store_key`` is the order's store id, 0 for none."""

    day = models.DateField(_("business day"))
    # Derived rows: the orders they are computed from name checked or held channels, so these keys take no
    # foreign-key check per new row at every batch's commit (nor an index of their own: the
    # unique key serves the day-first reads).
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.CASCADE, related_name="+",
                                db_constraint=False, db_index=False)
    store_key = models.IntegerField(_("store"), default=0)
    orders = models.IntegerField(_("orders"), default=0)
    member_orders = models.IntegerField(_("members' orders"), default=0)
    amount = models.DecimalField(_("amount"), **MONEY, default=0)
    member_amount = models.DecimalField(_("members' amount"), **MONEY, default=0)
    items = models.IntegerField(_("items"), default=0)
    member_items = models.IntegerField(_("members' items"), default=0)

    class Meta:
        verbose_name = _("daily sales")
        verbose_name_plural = _("daily sales")
        constraints = [
            models.UniqueConstraint(fields=["day", "channel", "store_key"], name="daily_sales_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.channel_id}/{self.store_key}: {self.orders} / {self.amount}"


class MemberMonth(models.Model):
    """A member's counted orders in one business month (``month`` is its first day), for
    cohorts and monthly activity; kept like :class:`DailySales`. Months without orders have
    no row."""

    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.CASCADE, related_name="months",
                               db_constraint=False, db_index=False)  # as DailySales.channel; the unique key indexes it
    month = models.DateField(_("month"))
    orders = models.IntegerField(_("orders"), default=0)
    amount = models.DecimalField(_("amount"), **MONEY, default=0)

    class Meta:
        verbose_name = _("member month")
        verbose_name_plural = _("member months")
        constraints = [
            models.UniqueConstraint(fields=["member", "month"], name="member_month_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:%Y-%m}: {self.orders}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        """The merged member's months are added to the survivor's."""
        from siyu.commerce.rollups import merge_member_months

        return merge_member_months(survivor_id, merged_id)
