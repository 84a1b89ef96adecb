"""Background work of the analytics app (Django Tasks)."""

from __future__ import annotations

from django_tasks import task

from siyu.analytics.services import recompute_models


@task()
def nightly_models() -> dict:
    """Recompute RFM and lifecycle stages of every member with every brand; returns the counts.

    Scheduled once a night (``siyu models`` does the same from the command line).
    """
    return recompute_models().as_dict()
