"""Background work of the loyalty app (Django Tasks)."""

from __future__ import annotations

from django.utils import timezone
from django_tasks import task

from siyu.loyalty.ledger import expire_points
from siyu.loyalty.models import LoyaltyProgram
from siyu.loyalty.tiers import evaluate_tiers, expire_paid_memberships


def run_nightly(*, now=None) -> dict:
    """Expire due points, end paid membership periods, then re-evaluate every active program's tiers."""
    now = now or timezone.now()
    summary = {"points_expired": expire_points(now=now), "paid_memberships_ended": expire_paid_memberships(now=now),
               "tiers": {}}
    for program in LoyaltyProgram.objects.filter(is_active=True).order_by("pk"):
        summary["tiers"][program.code] = evaluate_tiers(program=program, now=now).as_dict()
    return summary


@task()
def nightly_loyalty() -> dict:
    """The nightly loyalty run (points expiry, paid membership expiry, tier downgrades); returns the counts."""
    return run_nightly()
