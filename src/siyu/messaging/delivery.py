"""Delivery of the outbox through the channel adapters."""

from __future__ import annotations


def deliver_due() -> int:
    """Send every due outbox message; returns how many were attempted. (Lands with the messaging app.)"""
    return 0
