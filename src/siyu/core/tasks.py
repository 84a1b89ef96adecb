"""Background work of the shared kernel (Django Tasks)."""

from __future__ import annotations

from django_tasks import task

from siyu.core.models import NightlyRun
from siyu.core.nightly import run_nightly


@task()
def nightly(run_id: int) -> dict:
    """Run the claimed nightly run ``run_id``; returns what each job did."""
    return run_nightly(run=NightlyRun.objects.get(pk=run_id)).results
