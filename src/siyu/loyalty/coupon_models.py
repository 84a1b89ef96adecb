"""Coupons (优惠券) and the points mall (积分商城).

Configuration (coupon templates, rewards) is edited in the console; facts (issue runs, coupons,
reward redemptions) are written only by the services in ``coupons`` and ``mall``.

Counting: a template's ``issued_count`` is the number of coupons ever issued from it (a released
coupon stays issued), so ``issued_count = issued + redeemed + expired`` coupons, always; a
reward's ``stock`` is what is left to redeem, never negative.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import Channel, Order, Product
from siyu.loyalty.models import MONEY, LoyaltyProgram, PointsEntry
from siyu.members.models import Member
from siyu.org.models import Brand, Store

__all__ = [
    "Coupon",
    "CouponCategory",
    "CouponIssue",
    "CouponKind",
    "CouponState",
    "CouponTemplate",
    "IssueTarget",
    "Reward",
    "RewardKind",
    "RewardRedemption",
    "Validity",
]

PERCENT = {"max_digits": 5, "decimal_places": 2}


class CouponKind(models.TextChoices):
    AMOUNT_OFF = "amount_off", _("amount off (立减券)")
    PERCENT_OFF = "percent_off", _("percent off (折扣券)")
    THRESHOLD = "threshold", _("amount off above a minimum (满减券)")
    GIFT = "gift", _("gift (赠品券)")
    FREE_SHIPPING = "free_shipping", _("free shipping (包邮券)")


class Validity(models.TextChoices):
    FIXED = "fixed", _("fixed dates")
    DAYS = "days", _("N days after issue")


class CouponTemplate(models.Model):
    """A coupon template (优惠券模板): what a coupon is worth, where and when it can be used, how
    many there are and how many one member may hold. Belongs to a loyalty program or to a brand.

    ``min_amount`` is the order amount a coupon needs (满 of 满减); with a product scope it is
    the amount of the order's lines in scope.
    """

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="coupon_templates")
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="coupon_templates")
    kind = models.CharField(_("kind"), max_length=20, choices=CouponKind.choices)
    amount_off = models.DecimalField(_("amount off"), **MONEY, null=True, blank=True)
    percent_off = models.DecimalField(_("percent off"), **PERCENT, null=True, blank=True,
                                      help_text=_("15 takes 15% off (85折)"))
    max_discount = models.DecimalField(_("discount cap"), **MONEY, null=True, blank=True)
    min_amount = models.DecimalField(_("minimum order amount (满)"), **MONEY, default=0)
    gift_product = models.ForeignKey(Product, verbose_name=_("gift product"), null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    validity = models.CharField(_("validity"), max_length=10, choices=Validity.choices, default=Validity.FIXED)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(_("valid for (days after issue)"), null=True, blank=True)
    total_stock = models.PositiveIntegerField(_("total stock"), null=True, blank=True,
                                              help_text=_("Empty for unlimited"))
    issued_count = models.PositiveIntegerField(_("issued"), default=0)
    per_member_limit = models.PositiveIntegerField(_("per member limit"), null=True, blank=True,
                                                   help_text=_("Empty for no limit"))
    channels = models.ManyToManyField(Channel, verbose_name=_("usable channels"), blank=True, related_name="+",
                                      help_text=_("Empty for every channel"))
    stores = models.ManyToManyField(Store, verbose_name=_("usable stores"), blank=True, related_name="+",
                                    help_text=_("Empty for every store"))
    products = models.ManyToManyField(Product, verbose_name=_("usable products"), blank=True, related_name="+",
                                      help_text=_("Empty (and no category) for every product"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("coupon template (优惠券模板)")
        verbose_name_plural = _("coupon templates")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=(Q(program__isnull=False, brand__isnull=True)
                                              | Q(program__isnull=True, brand__isnull=False)),
                                   name="loyalty_coupon_template_program_or_brand"),
            models.CheckConstraint(
                condition=~Q(kind__in=["amount_off", "threshold"]) | Q(amount_off__gt=0),
                name="loyalty_coupon_template_amount_off"),
            models.CheckConstraint(
                condition=~Q(kind="percent_off") | Q(percent_off__gt=0, percent_off__lte=100),
                name="loyalty_coupon_template_percent_off"),
            models.CheckConstraint(condition=~Q(kind="threshold") | Q(min_amount__gt=0),
                                   name="loyalty_coupon_template_threshold"),
            models.CheckConstraint(condition=Q(min_amount__gte=0), name="loyalty_coupon_template_min_not_negative"),
            models.CheckConstraint(
                condition=(Q(validity="fixed", valid_until__isnull=False)
                           | Q(validity="days", valid_days__gt=0)),
                name="loyalty_coupon_template_validity"),
            models.CheckConstraint(
                condition=Q(total_stock__isnull=True) | Q(issued_count__lte=F("total_stock")),
                name="loyalty_coupon_template_stock"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if (self.program_id is None) == (self.brand_id is None):
            errors["program"] = _("a coupon template belongs to a loyalty program or to a brand")
        if self.kind in (CouponKind.AMOUNT_OFF, CouponKind.THRESHOLD) and not (self.amount_off or 0) > 0:
            errors["amount_off"] = _("give the amount taken off")
        if self.kind == CouponKind.PERCENT_OFF and not (0 < (self.percent_off or 0) <= 100):
            errors["percent_off"] = _("give a percentage above 0 and at most 100")
        if self.kind == CouponKind.THRESHOLD and not (self.min_amount or 0) > 0:
            errors["min_amount"] = _("a threshold coupon needs its minimum order amount")
        if self.kind == CouponKind.GIFT and self.gift_product_id is None:
            errors["gift_product"] = _("a gift coupon needs its gift product")
        if self.validity == Validity.FIXED and self.valid_until is None:
            errors["valid_until"] = _("fixed dates need an end")
        if self.validity == Validity.FIXED and self.valid_from and self.valid_until \
                and self.valid_from >= self.valid_until:
            errors["valid_until"] = _("the end comes after the start")
        if self.validity == Validity.DAYS and not self.valid_days:
            errors["valid_days"] = _("give the number of days a coupon stays valid")
        if self.total_stock is not None and self.total_stock < self.issued_count:
            errors["total_stock"] = _("%(issued)d coupons are already issued") % {"issued": self.issued_count}
        if errors:
            raise ValidationError(errors)

    @property
    def stock_left(self) -> int | None:
        return None if self.total_stock is None else self.total_stock - self.issued_count


class CouponCategory(models.Model):
    """A product category a template can be used on (besides its products)."""

    template = models.ForeignKey(CouponTemplate, verbose_name=_("coupon template"), on_delete=models.CASCADE,
                                 related_name="categories", db_index=False)
    category = models.CharField(_("category"), max_length=100)

    class Meta:
        verbose_name = _("usable category")
        verbose_name_plural = _("usable categories")
        constraints = [models.UniqueConstraint(fields=["template", "category"],
                                               name="loyalty_coupon_category_unique")]

    def __str__(self) -> str:
        return self.category


class IssueTarget(models.TextChoices):
    MEMBERS = "members", _("members")
    SNAPSHOT = "snapshot", _("segment snapshot")
    SEGMENT = "segment", _("saved segment")
    RULE = "rule", _("segment rule")
    REWARD = "reward", _("points mall redemption")


class CouponIssue(models.Model):
    """One issue run (发券): its idempotency key, whom it targeted and what came of it.

    ``skipped`` counts the members passed over by reason; ``skipped_members`` lists the first
    ``SKIPPED_DETAIL`` of them as ``[member_id, reason]``.
    """

    template = models.ForeignKey(CouponTemplate, verbose_name=_("coupon template"), on_delete=models.PROTECT,
                                 related_name="issues")
    idempotency_key = models.CharField(_("idempotency key"), max_length=150, unique=True)
    target = models.CharField(_("target"), max_length=10, choices=IssueTarget.choices)
    target_ref = models.CharField(_("target reference"), max_length=100, blank=True)
    rule = models.JSONField(_("rule"), null=True, blank=True)
    requested = models.PositiveIntegerField(_("members targeted"), default=0)
    issued = models.PositiveIntegerField(_("coupons issued"), default=0)
    skipped = models.JSONField(_("skipped by reason"), default=dict, blank=True)
    skipped_members = models.JSONField(_("skipped members"), default=list, blank=True)
    actor = models.CharField(_("by"), max_length=200, blank=True)
    issued_at = models.DateTimeField(_("issued at"))

    class Meta:
        verbose_name = _("coupon issue run (发券记录)")
        verbose_name_plural = _("coupon issue runs")
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.template_id} {self.idempotency_key}"


class CouponState(models.TextChoices):
    ISSUED = "issued", _("issued (未使用)")
    REDEEMED = "redeemed", _("redeemed (已使用)")
    EXPIRED = "expired", _("expired (已过期)")


class Coupon(models.Model):
    """One issued coupon (优惠券) of one member, with its own code and validity window.

    Redeemed against one order; released back to ``issued`` when that order is closed.
    """

    template = models.ForeignKey(CouponTemplate, verbose_name=_("coupon template"), on_delete=models.PROTECT,
                                 related_name="coupons", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT, related_name="coupons",
                               db_index=False)
    issue = models.ForeignKey(CouponIssue, verbose_name=_("issue run"), on_delete=models.PROTECT,
                              related_name="coupons")
    code = models.CharField(_("coupon code"), max_length=32, unique=True)
    state = models.CharField(_("state"), max_length=10, choices=CouponState.choices, default=CouponState.ISSUED)
    issued_at = models.DateTimeField(_("issued at"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"))
    order = models.ForeignKey(Order, verbose_name=_("order"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    discount = models.DecimalField(_("discount"), **MONEY, null=True, blank=True)
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    released_at = models.DateTimeField(_("last released at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon (优惠券)")
        verbose_name_plural = _("coupons")
        ordering = ["-issued_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(state="redeemed", order__isnull=False, discount__isnull=False, redeemed_at__isnull=False)
                           | (~Q(state="redeemed") & Q(order__isnull=True, discount__isnull=True))),
                name="loyalty_coupon_redeemed_has_order"),
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="loyalty_coupon_window"),
        ]
        indexes = [
            models.Index(fields=["state", "valid_until"], name="loyalty_coupon_due"),
            models.Index(fields=["member", "state"], name="loyalty_coupon_member_state"),
            models.Index(fields=["template", "member"], name="loyalty_coupon_template_member"),
        ]

    def __str__(self) -> str:
        return self.code


class RewardKind(models.TextChoices):
    GOODS = "goods", _("goods (实物)")
    COUPON = "coupon", _("coupon (优惠券)")
    CASH = "cash", _("cash-like (现金/红包)")


class Reward(models.Model):
    """A reward of the points mall (积分商城): what it costs in points, how many are left, how many
    one member may redeem and when it is on offer."""

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="rewards", db_index=False)
    code = models.SlugField(_("code"), max_length=50)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=RewardKind.choices)
    points_price = models.PositiveIntegerField(_("points price"))
    product = models.ForeignKey(Product, verbose_name=_("product"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    coupon_template = models.ForeignKey(CouponTemplate, verbose_name=_("coupon template"), null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="rewards")
    cash_amount = models.DecimalField(_("cash value"), **MONEY, null=True, blank=True)
    stock = models.PositiveIntegerField(_("stock left"), null=True, blank=True, help_text=_("Empty for unlimited"))
    redeemed_count = models.PositiveIntegerField(_("redeemed"), default=0)
    per_member_limit = models.PositiveIntegerField(_("per member limit"), null=True, blank=True,
                                                   help_text=_("Empty for no limit"))
    valid_from = models.DateTimeField(_("on offer from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("on offer until"), null=True, blank=True)
    is_active = models.BooleanField(_("on offer"), default=True)
    sort = models.PositiveSmallIntegerField(_("order"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points mall reward (积分商城)")
        verbose_name_plural = _("points mall rewards")
        ordering = ["program", "sort", "id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="loyalty_reward_code_unique"),
            models.CheckConstraint(condition=Q(points_price__gt=0), name="loyalty_reward_price_positive"),
            models.CheckConstraint(condition=Q(stock__isnull=True) | Q(stock__gte=0),
                                   name="loyalty_reward_stock_not_negative"),
            models.CheckConstraint(condition=~Q(kind="coupon") | Q(coupon_template__isnull=False),
                                   name="loyalty_reward_coupon_template"),
            models.CheckConstraint(condition=~Q(kind="cash") | Q(cash_amount__gt=0),
                                   name="loyalty_reward_cash_amount"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.kind == RewardKind.COUPON and self.coupon_template_id is None:
            raise ValidationError({"coupon_template": _("a coupon reward needs its coupon template")})
        if self.kind == RewardKind.CASH and not (self.cash_amount or 0) > 0:
            raise ValidationError({"cash_amount": _("a cash-like reward needs its value")})
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValidationError({"valid_until": _("the end comes after the start")})


class RewardRedemption(models.Model):
    """One redemption (兑换) in the points mall: the points spent (a ledger entry with this
    redemption as source) and, for a coupon reward, the coupon issued."""

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="+", db_index=False)
    reward = models.ForeignKey(Reward, verbose_name=_("reward"), on_delete=models.PROTECT,
                               related_name="redemptions", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="reward_redemptions")
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    points = models.PositiveIntegerField(_("points spent"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=120)
    points_entry = models.ForeignKey(PointsEntry, verbose_name=_("points entry"), null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    coupon = models.ForeignKey(Coupon, verbose_name=_("coupon"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    redeemed_at = models.DateTimeField(_("redeemed at"))
    actor = models.CharField(_("by"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("reward redemption (积分兑换)")
        verbose_name_plural = _("reward redemptions")
        ordering = ["-redeemed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="loyalty_redemption_key_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="loyalty_redemption_quantity_positive"),
        ]
        indexes = [models.Index(fields=["reward", "member"], name="loyalty_redemption_member")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.reward_id} × {self.quantity}"
