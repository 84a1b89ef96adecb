"""Loyalty's reactions to changes elsewhere that its stored figures cannot see."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone


def org_moved(sender, instance, raw: bool = False, **kwargs) -> None:
    """``pre_save`` of a store or a brand: a store moved to another brand, or a brand to another
    group, changes which program counts its orders, and no account's stored tier figures know it.
    Once the change commits every program is touched (``updated_at``), so every account counts its
    window afresh before an upgrade (``tiers.stored_bound``). A rare, deliberate edit of the org."""
    from siyu.loyalty.models import LoyaltyProgram
    from siyu.org.models import Store

    if raw or instance.pk is None:
        return
    field = "brand_id" if issubclass(sender, Store) else "group_id"
    before = sender.objects.filter(pk=instance.pk).values_list(field, flat=True).first()
    if before is not None and before != getattr(instance, field):
        transaction.on_commit(lambda: LoyaltyProgram.objects.update(updated_at=timezone.now()))
