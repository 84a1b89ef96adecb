"""What every ingestion batch does for the members it changed, inside its transaction.

Rule tags and the membership of tracked segments are re-evaluated for exactly those members,
and their lifecycle stage recomputed, so that cost grows with the batch, not the member count.
The nightly tasks run the same functions for everyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import timezone

from siyu.segments.services import refresh_memberships
from siyu.tags.services import refresh_rule_tags


def members_changed(member_ids: Iterable[int], *, buyers: Iterable[int] | None = None,
                    now: dt.datetime | None = None) -> None:
    """Apply the real-time consequences of a batch to ``member_ids``.

    The lifecycle stage reads only orders: it is recomputed for ``buyers``, the members whose
    orders the batch may have changed (default: all of ``member_ids``); an events batch passes
    none.
    """
    from siyu.analytics.services import recompute_lifecycle

    ids = sorted(set(member_ids))
    if not ids:
        return
    now = now or timezone.now()
    buyers = ids if buyers is None else sorted(set(buyers))
    if buyers:
        recompute_lifecycle(member_ids=buyers, now=now)  # and their lifecycle tags
    refresh_rule_tags(member_ids=ids, now=now)  # after lifecycle: a rule may read the stage
    refresh_memberships(member_ids=ids, now=now)
