"""Behaviour event reads."""

from __future__ import annotations

from siyu.events.models import Event


def recent_events(member_id: int, *, limit: int = 50) -> list[Event]:
    """The member's ``limit`` most recent events with their store and channel (one query)."""
    return list(Event.objects.filter(member_id=member_id).select_related("store", "channel")
                .order_by("-occurred_at", "-pk")[:limit])
