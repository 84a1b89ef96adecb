"""Demo loyalty: 悦衣's member club, set up before the orders arrive so that they earn points.

One yuan earns one point, Wednesdays are member day (×2), points expire at the end of the
following year; 普卡 / 银卡 (3,000 yuan or 5 orders in 365 days, ×1.2 points, free shipping) /
金卡 (8,000 yuan and 9,000 points, ×1.5, birthday gift, priority after-sales). A daily check-in
earns 5 points. The points mall offers a 满300减30 coupon and a canvas tote.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from siyu.demo.org import APPAREL
from siyu.events.models import EventKind
from siyu.loyalty.coupon_models import CouponKind, CouponTemplate, Reward, RewardKind, Validity
from siyu.loyalty.models import (
    Benefit,
    BenefitCategory,
    BenefitKind,
    EventEarnRule,
    ExpiryPolicy,
    LoyaltyProgram,
    MemberDayKind,
    ProgramScope,
    Tier,
    TierRequirement,
)
from siyu.org.models import Brand

#: (code, name, rank, fields, [(benefit kind, name, multiplier)])
TIERS = [
    ("normal", "普卡", 0, {}, []),
    ("silver", "银卡", 1, {"min_paid_amount": Decimal(3000), "min_order_count": 5},
     [(BenefitKind.POINTS_MULTIPLIER, "1.2 倍积分", Decimal("1.2")), (BenefitKind.FREE_SHIPPING, "包邮", None)]),
    ("gold", "金卡", 2, {"min_paid_amount": Decimal(8000), "min_points_earned": 9000, "requires": TierRequirement.ALL},
     [(BenefitKind.POINTS_MULTIPLIER, "1.5 倍积分", Decimal("1.5")), (BenefitKind.BIRTHDAY_GIFT, "生日礼", None),
      (BenefitKind.PRIORITY_AFTER_SALES, "优先售后", None)]),
]
RETENTION_DAYS = 30


def _saved(obj):
    obj.full_clean()  # the same checks as the console's forms
    obj.save()
    return obj


def setup_loyalty() -> LoyaltyProgram:
    """The apparel brand's program with its tiers, benefits, check-in points and points mall."""
    brand = Brand.objects.get(code=APPAREL)
    program = _saved(LoyaltyProgram(
        code="yue-club", name="悦衣会员俱乐部", group=brand.group, scope=ProgramScope.BRAND, brand=brand,
        time_zone="Asia/Shanghai", expiry_policy=ExpiryPolicy.YEAR_END, expiry_n=1,
        member_day_kind=MemberDayKind.WEEKLY, member_day_days=[3], member_day_multiplier=Decimal(2),
        tier_window_days=365))
    for code, name, rank, fields, benefits in TIERS:
        tier = _saved(Tier(program=program, code=code, name=name, rank=rank, retention_days=RETENTION_DAYS, **fields))
        for kind, label, multiplier in benefits:
            category = BenefitCategory.PRODUCT if kind == BenefitKind.POINTS_MULTIPLIER else BenefitCategory.SERVICE
            _saved(Benefit(program=program, tier=tier, category=category, kind=kind, name=label,
                           multiplier=multiplier))
    _saved(EventEarnRule(program=program, code="daily-check-in", name="每日签到", event_kind=EventKind.CHECK_IN,
                         points=5, max_per_day=1))
    coupon = _saved(CouponTemplate(
        code="yue-300-30", name="满300减30", program=program, kind=CouponKind.THRESHOLD, amount_off=Decimal(30),
        min_amount=Decimal(300), validity=Validity.DAYS, valid_days=30))
    now = timezone.now()
    _saved(Reward(program=program, code="coupon-300-30", name="满300减30 优惠券", kind=RewardKind.COUPON,
                  points_price=300, coupon_template=coupon, per_member_limit=2, valid_from=now, sort=1))
    _saved(Reward(program=program, code="canvas-tote", name="悦衣帆布袋", kind=RewardKind.GOODS, points_price=800,
                  stock=200, per_member_limit=1, valid_from=now, sort=2))
    return program
