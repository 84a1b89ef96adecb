"""The journey engine: the worker's tick moves every due member of a step together."""

from __future__ import annotations


def tick() -> int:
    """Advance every due enrolment; returns how many moved. (The engine lands with the journeys app.)"""
    return 0
