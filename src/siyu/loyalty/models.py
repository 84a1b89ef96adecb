"""Loyalty (忠诚度): programs, tiers and benefits, paid membership, the points ledger.

Configuration (programs, tiers, benefits, earn rules, plans) is edited in the console; facts
(accounts, ledger entries and their lots, allocations, tier history, paid memberships) are written only by
the services in ``ledger``, ``earning`` and ``tiers``.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from siyu.commerce.models import Product
from siyu.events.models import EventKind
from siyu.members.models import Member
from siyu.org.models import Brand, Group

MONEY = {"max_digits": 14, "decimal_places": 2}


def default_time_zone() -> str:
    return settings.TIME_ZONE

FACTOR = {"max_digits": 6, "decimal_places": 2}


class ProgramScope(models.TextChoices):
    BRAND = "brand", _("one brand")
    GROUP = "group", _("group-wide (集团多业态积分互通)")


class Rounding(models.TextChoices):
    DOWN = "down", _("round down")
    HALF_UP = "half_up", _("round half up")
    UP = "up", _("round up")


class ExpiryPolicy(models.TextChoices):
    NONE = "none", _("points never expire")
    YEAR_END = "year_end", _("end of the Nth year after earning")
    DAYS = "days", _("N days after earning")


class MemberDayKind(models.TextChoices):
    NONE = "none", _("no member day")
    MONTHLY = "monthly", _("days of the month")
    WEEKLY = "weekly", _("days of the week")


class LoyaltyProgram(models.Model):
    """A loyalty program (会员忠诚度计划): one brand's, or shared by every brand of the group.

    A brand belongs to at most one active program: its own, else its group's group-wide one.
    """

    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    group = models.ForeignKey(Group, verbose_name=pgettext_lazy("organisation", "group"),
                              on_delete=models.PROTECT, related_name="loyalty_programs")
    scope = models.CharField(_("scope"), max_length=10, choices=ProgramScope.choices, default=ProgramScope.BRAND)
    brand = models.ForeignKey(Brand, verbose_name=_("brand"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="loyalty_programs", help_text=_("Only for a one-brand program"))
    is_active = models.BooleanField(_("active"), default=True, db_index=True)
    time_zone = models.CharField(_("time zone"), max_length=50, default=default_time_zone,
                                 help_text=_("Business days (member day, check-in day, caps) are days in this zone"))
    earn_from = models.DateTimeField(_("earn from"), null=True, blank=True,
                                     help_text=_("Orders and events before this moment earn no points"))
    points_per_yuan = models.DecimalField(_("points per yuan (每元积分)"), **FACTOR, default=1)
    rounding = models.CharField(_("rounding"), max_length=10, choices=Rounding.choices, default=Rounding.DOWN)
    expiry_policy = models.CharField(_("points expiry (积分有效期)"), max_length=10, choices=ExpiryPolicy.choices,
                                     default=ExpiryPolicy.NONE)
    expiry_n = models.PositiveIntegerField(_("N (years or days)"), default=1)
    member_day_kind = models.CharField(_("member day (会员日)"), max_length=10, choices=MemberDayKind.choices,
                                       default=MemberDayKind.NONE)
    member_day_days = models.JSONField(_("member days"), default=list, blank=True,
                                       help_text=_("Days of the month (1–31) or of the week (1 = Monday … 7 = Sunday)"))
    member_day_multiplier = models.DecimalField(_("member day points multiplier"), **FACTOR, default=1)
    event_daily_cap = models.PositiveIntegerField(_("daily cap on event points"), null=True, blank=True)
    event_monthly_cap = models.PositiveIntegerField(_("monthly cap on event points"), null=True, blank=True)
    tier_window_days = models.PositiveIntegerField(
        _("tier window (days)"), default=365,
        help_text=_("Tier thresholds count the orders and points of this many days; 0 counts all history"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("loyalty program")
        verbose_name_plural = _("loyalty programs")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(scope=ProgramScope.BRAND, brand__isnull=False)
                           | Q(scope=ProgramScope.GROUP, brand__isnull=True)),
                name="loyalty_program_scope_brand"),
            models.CheckConstraint(condition=Q(points_per_yuan__gte=0), name="loyalty_program_rate_not_negative"),
            models.CheckConstraint(condition=Q(member_day_multiplier__gte=0),
                                   name="loyalty_program_member_day_multiplier_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def clean(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"time_zone": _("unknown time zone")}) from None
        if self.scope == ProgramScope.BRAND and self.brand_id is None:
            raise ValidationError({"brand": _("a one-brand program needs its brand")})
        if self.scope == ProgramScope.GROUP:
            self.brand = None
        if self.brand_id and self.group_id and self.brand.group_id != self.group_id:
            raise ValidationError({"brand": _("the brand belongs to another group")})
        limit = 31 if self.member_day_kind == MemberDayKind.MONTHLY else 7
        days = self.member_day_days or []
        if not isinstance(days, list) or not all(isinstance(d, int) and 1 <= d <= limit for d in days):
            raise ValidationError({"member_day_days": _("give a list of whole days from 1 to %(limit)d")
                                   % {"limit": limit}})
        if self.member_day_kind != MemberDayKind.NONE and not days:
            raise ValidationError({"member_day_days": _("name at least one member day")})
        if self.is_active:
            self._check_one_active_program_per_brand()

    def _check_one_active_program_per_brand(self) -> None:
        others = LoyaltyProgram.objects.filter(is_active=True, group_id=self.group_id).exclude(pk=self.pk)
        if self.scope == ProgramScope.GROUP:
            clash = others.exists()
        else:
            clash = others.filter(Q(scope=ProgramScope.GROUP) | Q(brand_id=self.brand_id)).exists()
        if clash:
            raise ValidationError(_("a brand belongs to at most one active program: another active program "
                                    "already covers it"))


class TierRequirement(models.TextChoices):
    ANY = "any", _("any threshold")
    ALL = "all", _("every threshold")


class Tier(models.Model):
    """A free tier (会员等级), ranked; reached by thresholds over the program's tier window.

    A tier without thresholds is an entry tier everyone holds. ``retention_days`` (保级期) is how
    long a tier is kept after it was reached or last re-qualified for.
    """

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="tiers", db_index=False)
    code = models.SlugField(_("code"), max_length=50)
    name = models.CharField(_("name"), max_length=100)
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("Higher is better; 0 is the entry tier"))
    min_paid_amount = models.DecimalField(_("minimum paid amount"), **MONEY, null=True, blank=True)
    min_order_count = models.PositiveIntegerField(_("minimum orders"), null=True, blank=True)
    min_points_earned = models.PositiveIntegerField(_("minimum points earned"), null=True, blank=True)
    requires = models.CharField(_("qualifies on"), max_length=3, choices=TierRequirement.choices,
                                default=TierRequirement.ANY)
    retention_days = models.PositiveIntegerField(_("retention period (days, 保级期)"), default=365)

    class Meta:
        verbose_name = _("member tier (会员等级)")
        verbose_name_plural = _("member tiers")
        ordering = ["program", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="loyalty_tier_code_unique"),
            models.UniqueConstraint(fields=["program", "rank"], name="loyalty_tier_rank_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def thresholds(self) -> dict:
        return {name: value for name, value in (("paid", self.min_paid_amount), ("orders", self.min_order_count),
                                                 ("points", self.min_points_earned)) if value is not None}


class PaidMembershipPlan(models.Model):
    """Paid membership (付费会员): bought for a period, renewable, with its own benefits."""

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="paid_plans", db_index=False)
    code = models.SlugField(_("code"), max_length=50)
    name = models.CharField(_("name"), max_length=100)
    price = models.DecimalField(_("price"), **MONEY)
    duration_days = models.PositiveIntegerField(_("period (days)"), default=365)
    is_active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        verbose_name = _("paid membership plan (付费会员)")
        verbose_name_plural = _("paid membership plans")
        ordering = ["program", "code"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="loyalty_plan_code_unique"),
            models.CheckConstraint(condition=Q(price__gte=0), name="loyalty_plan_price_not_negative"),
            models.CheckConstraint(condition=Q(duration_days__gt=0), name="loyalty_plan_duration_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class BenefitCategory(models.TextChoices):
    PRODUCT = "product", _("product (商品权益)")
    SERVICE = "service", _("service (服务权益)")
    ACTIVITY = "activity", _("activity (活动权益)")
    WELFARE = "welfare", _("welfare (福利权益)")


class BenefitKind(models.TextChoices):
    POINTS_MULTIPLIER = "points_multiplier", _("points multiplier (多倍积分)")
    MEMBER_PRICE = "member_price", _("member price (会员价)")
    DISCOUNT = "discount", _("discount (折扣)")
    BIRTHDAY_GIFT = "birthday_gift", _("birthday gift (生日礼)")
    FREE_SHIPPING = "free_shipping", _("free shipping (包邮)")
    FREE_RETURN_SHIPPING = "free_return_shipping", _("free return shipping (退货包运费)")
    PRIORITY_AFTER_SALES = "priority_after_sales", _("priority after-sales (优先售后)")
    NEW_PRODUCT_TRIAL = "new_product_trial", _("new product first try (新品首发)")
    FREE_TRIAL = "free_trial", _("free trial (免费试用)")
    LIMITED_PURCHASE = "limited_purchase", _("limited purchase (限量购)")
    MEMBER_DAY_OFFER = "member_day_offer", _("member day offer (会员日专享)")
    SUPER_COUPON = "super_coupon", _("super coupon (超级券)")
    GIFT_EXCHANGE = "gift_exchange", _("gift exchange (礼品兑换)")
    INVITE_CASHBACK = "invite_cashback", _("invite cash back (邀请返现)")


class Benefit(models.Model):
    """A benefit (会员权益) of a tier or of a paid membership plan, kept as data.

    ``multiplier`` is read by earning for ``points_multiplier`` benefits; ``value`` holds the
    parameters other kinds need (e.g. ``{"discount": "0.95"}``, ``{"coupon_template": "…"}``).
    """

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="benefits")
    tier = models.ForeignKey(Tier, verbose_name=_("tier"), null=True, blank=True, on_delete=models.CASCADE,
                             related_name="benefits")
    paid_plan = models.ForeignKey(PaidMembershipPlan, verbose_name=_("paid membership plan"), null=True, blank=True,
                                  on_delete=models.CASCADE, related_name="benefits")
    category = models.CharField(_("category"), max_length=10, choices=BenefitCategory.choices)
    kind = models.CharField(_("kind"), max_length=30, choices=BenefitKind.choices)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    multiplier = models.DecimalField(_("points multiplier"), **FACTOR, null=True, blank=True)
    value = models.JSONField(_("parameters"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    sort = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("benefit (会员权益)")
        verbose_name_plural = _("benefits")
        ordering = ["program", "sort", "id"]
        constraints = [
            models.CheckConstraint(condition=(Q(tier__isnull=False, paid_plan__isnull=True)
                                              | Q(tier__isnull=True, paid_plan__isnull=False)),
                                   name="loyalty_benefit_tier_or_plan"),
            models.CheckConstraint(condition=Q(multiplier__isnull=True) | Q(multiplier__gte=0),
                                   name="loyalty_benefit_multiplier_not_negative"),
        ]

    def __str__(self) -> str:
        return self.name


class PurchaseExclusion(models.Model):
    """Order lines of this product or category earn no points."""

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.CASCADE,
                                related_name="exclusions")
    product = models.ForeignKey(Product, verbose_name=_("product"), null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    category = models.CharField(_("category"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("points exclusion")
        verbose_name_plural = _("points exclusions")
        constraints = [
            models.CheckConstraint(condition=(Q(product__isnull=False, category="")
                                              | (Q(product__isnull=True) & ~Q(category=""))),
                                   name="loyalty_exclusion_product_or_category"),
        ]

    def __str__(self) -> str:
        return str(self.product) if self.product_id else self.category


class EventEarnRule(models.Model):
    """Points for a behaviour: follow, daily check-in (签到), share, activity sign-up, profile completion.

    ``once_per_member`` earns once ever (follow); ``max_per_day`` limits earnings per business
    day (1 for a daily check-in); ``match_properties`` narrows the events (``{"form": "profile"}``).
    """

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.CASCADE,
                                related_name="event_rules", db_index=False)
    code = models.SlugField(_("code"), max_length=50)
    name = models.CharField(_("name"), max_length=100)
    event_kind = models.CharField(_("event kind"), max_length=20, choices=EventKind.choices)
    match_properties = models.JSONField(_("event properties to match"), default=dict, blank=True)
    points = models.PositiveIntegerField(_("points"))
    once_per_member = models.BooleanField(_("once per member"), default=False)
    max_per_day = models.PositiveSmallIntegerField(_("at most per day"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("event points rule")
        verbose_name_plural = _("event points rules")
        ordering = ["program", "code"]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="loyalty_event_rule_code_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def matches(self, properties: dict) -> bool:
        return all((properties or {}).get(k) == v for k, v in (self.match_properties or {}).items())


# Facts ------------------------------------------------------------------------------------------

class PointsAccount(models.Model):
    """A member's points in one program: the cached balance and the debt (欠分) of the ledger."""

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="accounts", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="points_accounts")
    balance = models.BigIntegerField(_("points balance"), default=0)
    debt = models.BigIntegerField(
        _("points owed (欠分)"), default=0,
        help_text=_("Reversed points the member had already spent; settled by future earnings"))
    # An upper bound of the member's tier figures, so that ingestion counts the window only for
    # members who could reach a higher tier (see siyu.loyalty.tiers): exact as of
    # ``tier_figures_at`` for the facts dated from ``tier_figures_from`` on (null: since ever),
    # plus every order and points entry seen since. Unknown while ``tier_figures_at`` is null.
    tier_figures_at = models.DateTimeField(_("tier figures counted at"), null=True, blank=True)
    tier_figures_from = models.DateTimeField(_("tier figures cover from"), null=True, blank=True)
    tier_paid = models.DecimalField(_("tier figures: paid amount (upper bound)"), **MONEY, default=0)
    tier_orders = models.BigIntegerField(_("tier figures: orders (upper bound)"), default=0)
    tier_points = models.BigIntegerField(_("tier figures: points (upper bound)"), default=0)
    # Exact, not just a bound, while everything added since the count was a new fact (an order the
    # batch inserted, a new ledger entry) and no counted order changed: then they are the member's
    # figures for any window holding the facts they count, dated from ``tier_figures_oldest`` to
    # ``tier_figures_newest`` (null: none), and ingestion upgrades from them without counting.
    tier_figures_exact = models.BooleanField(_("tier figures exact"), default=False)
    tier_figures_oldest = models.DateTimeField(_("tier figures: oldest fact"), null=True, blank=True)
    tier_figures_newest = models.DateTimeField(_("tier figures: newest fact"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.UniqueConstraint(fields=["program", "member"], name="loyalty_account_unique"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="loyalty_account_balance_not_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="loyalty_account_debt_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}@{self.program_id}: {self.balance}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        from siyu.loyalty.ledger import merge_accounts

        return merge_accounts(survivor_id=survivor_id, merged_id=merged_id)


class EntryKind(models.TextChoices):
    EARN = "earn", _("earned")
    REDEEM = "redeem", _("redeemed")
    EXPIRE = "expire", _("expired")
    REVERSE = "reverse", _("reversed")
    ADJUST = "adjust", _("adjusted")
    SETTLE = "settle", _("debt settled")


class SourceType(models.TextChoices):
    ORDER = "order", _("order")
    REFUND = "refund", _("refund")
    EVENT = "event", _("event")
    REDEMPTION = "redemption", _("redemption")
    OPERATOR = "operator", _("operator")
    SYSTEM = "system", _("system")


class PointsEntry(models.Model):
    """One line of the append-only points ledger (积分流水).

    ``amount`` is the change of the balance; ``debt_delta`` the change of the debt (a reversal
    larger than the balance records its shortfall there). So ``balance = Σ amount`` and
    ``debt = Σ debt_delta`` for every account, always.

    A credit is also a lot (积分批次): ``remaining`` says how many of its points are left to spend
    and ``expires_at`` when they expire; debits leave both empty. So ``balance = Σ remaining`` too.
    The only columns of the ledger that ever change are ``remaining`` (a debit draws on the lot)
    and, on a member merge, ``account``.
    """

    # No single-column indexes on the foreign keys: the unique (program, key) and the (account, …)
    # indexes lead with them, and every index costs each ledger insert. ``program`` is the
    # account's program, copied for the unique key; ``verify_ledger`` checks that the copy matches.
    # Neither key has a database constraint: each costs a check per row at commit (the account's
    # about half a second of the loyalty bench's 100,000 orders). Entries are
    # only written against accounts the writer holds locked (``lock_accounts``), and an account is
    # only removed (a member merge) under that lock once its entries have moved; ``PROTECT`` still
    # refuses to delete an account with entries, and ``verify_ledger`` reports an entry without one.
    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="+", db_index=False, db_constraint=False)
    account = models.ForeignKey(PointsAccount, verbose_name=_("points account"), on_delete=models.PROTECT,
                                related_name="entries", db_index=False, db_constraint=False)
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    amount = models.BigIntegerField(_("points"))
    debt_delta = models.BigIntegerField(_("debt change"), default=0)
    reason = models.CharField(_("reason"), max_length=200)
    source_type = models.CharField(_("source"), max_length=12, choices=SourceType.choices)
    source_id = models.CharField(_("source id"), max_length=64, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=150)
    occurred_at = models.DateTimeField(_("occurred at"))
    business_date = models.DateField(_("business day"))
    actor = models.CharField(_("by"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    # The lot of a credit. A lot of its own cost every credit a second row and three more index
    # entries (its key, its account, its expiry): 0.6 s of the loyalty bench's 100,000 orders.
    remaining = models.BigIntegerField(_("remaining"), null=True, blank=True,
                                       help_text=_("Credits: the points not yet spent, expired or taken back"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("points entry (积分流水)")
        verbose_name_plural = _("points ledger")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="loyalty_entry_key_unique"),
            models.CheckConstraint(condition=Q(remaining__isnull=True) | Q(
                amount__gt=0, remaining__gte=0, remaining__lte=models.F("amount")),
                name="loyalty_entry_remaining_within_amount"),
        ]
        # One index by account: it serves the tier windows, the event caps and a member's ledger.
        # An (account, source, day) index for the caps cost 270 ms per 100,000 entries written, a
        # third of the inserts.
        indexes = [models.Index(fields=["account", "occurred_at"], name="loyalty_entry_account_time")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind} {self.amount:+d}"


class PointsAllocation(models.Model):
    """How many points a debit (spend, expiry, reversal, settlement) took from one lot (a credit entry)."""

    entry = models.ForeignKey(PointsEntry, verbose_name=_("debit entry"), on_delete=models.PROTECT,
                              related_name="allocations", db_index=False)
    lot = models.ForeignKey(PointsEntry, verbose_name=_("lot"), on_delete=models.PROTECT, related_name="draws")
    amount = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("points allocation")
        verbose_name_plural = _("points allocations")
        constraints = [
            models.UniqueConstraint(fields=["entry", "lot"], name="loyalty_allocation_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="loyalty_allocation_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.entry_id} ← {self.lot_id}: {self.amount}"


class MemberTier(models.Model):
    """The tier a member holds in a program now; no row means the entry tier.

    A derived row (the program's rule applied to the member's history), written by the thousand
    during ingestion: its keys are not checked by the database, as the tier history's. It is
    written from the program's tiers for members with a points account in it (whose member and
    program keys are checked); Django's ``PROTECT`` keeps members, programs and tiers with such
    rows from deletion.
    """

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="+", db_index=False, db_constraint=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="loyalty_tiers", db_constraint=False)
    tier = models.ForeignKey(Tier, verbose_name=_("tier"), on_delete=models.PROTECT, related_name="+",
                             db_constraint=False)
    achieved_at = models.DateTimeField(_("reached at"))
    retained_until = models.DateTimeField(_("kept until (保级至)"), db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member's tier")
        verbose_name_plural = _("members' tiers")
        constraints = [models.UniqueConstraint(fields=["program", "member"], name="loyalty_member_tier_unique")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.tier_id}"

    @classmethod
    def merge_member(cls, survivor_id: int, merged_id: int) -> int:
        from siyu.loyalty.tiers import merge_member_tiers

        return merge_member_tiers(survivor_id=survivor_id, merged_id=merged_id)


class TierChangeReason(models.TextChoices):
    UPGRADE = "upgrade", _("upgraded on qualifying")
    DOWNGRADE = "downgrade", _("downgraded after the retention period")
    MERGE = "merge", _("members merged")


class TierChange(models.Model):
    """History of every tier change, with its reason and the figures it was decided on.

    Written only beside the change of the member's tier row, whose own constraints check the same
    program, member and tier: the history's keys have no database constraints and, but for the
    member's, no indexes (ingestion writes a row for every upgrade, and each check and index cost
    every row; ``PROTECT`` still guards programs, members and tiers with history).
    """

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="+", db_index=False, db_constraint=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="tier_changes", db_index=False, db_constraint=False)
    from_tier = models.ForeignKey(Tier, verbose_name=_("from tier"), null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    to_tier = models.ForeignKey(Tier, verbose_name=_("to tier"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    reason = models.CharField(_("reason"), max_length=10, choices=TierChangeReason.choices)
    figures = models.JSONField(_("figures"), default=dict, blank=True)
    changed_at = models.DateTimeField(_("changed at"), db_index=True)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier history")
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["member", "changed_at"], name="loyalty_tier_change_member")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_tier_id} → {self.to_tier_id}"


class ConfigurationStamp(models.Model):
    """One row whose token changes whenever the configuration that earning reads changes: programs,
    tiers, benefits, purchase exclusions and event rules. Database triggers (migration 0014) set a
    new random token on every insert, update and delete of those tables, whatever wrote them (the
    console, a bulk update, raw SQL), in the writer's transaction; ingestion keeps what it read of
    the configuration for as long as the token it reads is the same (``programs.active_programs``).
    A token is never reused, so a rolled-back change cannot pass for a later one."""

    token = models.CharField(_("token"), max_length=36)

    class Meta:
        verbose_name = _("configuration stamp")
        verbose_name_plural = _("configuration stamps")

    def __str__(self) -> str:
        return self.token


class PaidMembershipStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    EXPIRED = "expired", _("expired")


class PaidMembership(models.Model):
    """One bought period of a paid membership; a renewal is the next period, starting when this ends."""

    program = models.ForeignKey(LoyaltyProgram, verbose_name=_("loyalty program"), on_delete=models.PROTECT,
                                related_name="+", db_index=False)
    member = models.ForeignKey(Member, verbose_name=_("member"), on_delete=models.PROTECT,
                               related_name="paid_memberships", db_index=False)
    plan = models.ForeignKey(PaidMembershipPlan, verbose_name=_("plan"), on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    price = models.DecimalField(_("price paid"), **MONEY)
    status = models.CharField(_("status"), max_length=10, choices=PaidMembershipStatus.choices,
                              default=PaidMembershipStatus.ACTIVE)
    idempotency_key = models.CharField(_("idempotency key"), max_length=150)
    created_at = models.DateTimeField(_("bought at"), auto_now_add=True)

    class Meta:
        verbose_name = _("paid membership period")
        verbose_name_plural = _("paid memberships")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="loyalty_paid_key_unique"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="loyalty_paid_period"),
        ]
        indexes = [
            models.Index(fields=["member", "program", "ends_at"], name="loyalty_paid_member_end"),
            models.Index(fields=["status", "ends_at"], name="loyalty_paid_due"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.plan_id} {self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"


from siyu.loyalty.coupon_models import *  # noqa: E402,F403 - coupons and the points mall
