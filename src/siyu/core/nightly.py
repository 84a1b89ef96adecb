"""The nightly run (夜间任务): the time-based recomputes, once per business day, in a fixed order.

Ingestion batches keep lifecycle stages, rule tags and segment membership current for the
members they touch. What only time changes — a tag expiring, a member turning silent, RFM
quintiles, a "last 30 days" rule — is brought up to date here, for everyone.

``siyu worker`` claims the day at ``SIYU_NIGHTLY_AT`` (business time, default 02:00) and runs it as
a task; several workers claim it once between them (the day is unique). ``siyu nightly`` runs it
by hand or from cron. Each job runs even when an earlier one failed; the run records what each
did, or its error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from siyu.core.models import NightlyRun
from siyu.core.time import business_date, business_zone

log = logging.getLogger(__name__)

#: (key, label, service): each service takes ``now=`` and recomputes for everyone. Order matters:
#: expired tags go first, rule tags may read lifecycle stages, segments may read tags.
JOBS: list[tuple[str, Any, str]] = [
    ("expire_tags", _("Expire tags"), "siyu.tags.services.expire_tags"),
    ("loyalty", _("Points expiry, paid memberships and tier downgrades"), "siyu.loyalty.tasks.run_nightly"),
    ("models", _("RFM scores and lifecycle stages"), "siyu.analytics.services.recompute_models"),
    ("rule_tags", _("Rule tags"), "siyu.tags.services.refresh_rule_tags"),
    ("segments", _("Segment membership history"), "siyu.segments.services.refresh_memberships"),
    ("expire_coupons", _("Expire coupons"), "siyu.loyalty.coupons.expire_coupons"),
]

#: ``progress(job_key, label, done, total)`` before each job and after the last.
Progress = Callable[[str, Any, int, int], None]


def nightly_time() -> dt.time | None:
    """When the worker starts the nightly run (``SIYU_NIGHTLY_AT``), or None when it is off."""
    value = settings.SIYU_NIGHTLY_AT
    return None if value in ("", "off") else dt.time.fromisoformat(value)


def claim_due_run(*, now: dt.datetime | None = None) -> NightlyRun | None:
    """Claim today's run if its hour has come and nobody claimed it; else None."""
    at = nightly_time()
    now = now or timezone.now()
    if at is None or timezone.localtime(now, business_zone()).time() < at:
        return None
    try:
        with transaction.atomic():
            return NightlyRun.objects.create(day=business_date(now))
    except IntegrityError:  # claimed already, by this worker or another
        return None


def enqueue_due_run() -> NightlyRun | None:
    """The worker's nightly loop: claim today's run when it is due and queue it for the workers."""
    from siyu.core.tasks import nightly

    run = claim_due_run()
    if run is not None:
        nightly.enqueue(run.pk)
    return run


def run_nightly(*, run: NightlyRun | None = None, now: dt.datetime | None = None,
                progress: Progress | None = None) -> NightlyRun:
    """Run every job for ``run``'s day (default: claim today's, or take it over when re-run by
    hand). Returns the run with each job's result or error."""
    now = now or timezone.now()
    if run is None:
        run, _created = NightlyRun.objects.get_or_create(day=business_date(now))
    run.state, run.started_at, run.results = NightlyRun.State.RUNNING, timezone.now(), {}
    run.save()
    failed = False
    for done, (key, label, path) in enumerate(JOBS):
        if progress:
            progress(key, label, done, len(JOBS))
        try:
            run.results[key] = _plain(import_string(path)(now=now))
        except Exception as exc:  # one job's failure must not stop the others; it is recorded
            log.exception("nightly job %s failed", key)
            run.results[key] = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        run.save(update_fields=["results"])
    if progress:
        progress("", "", len(JOBS), len(JOBS))
    run.state = NightlyRun.State.FAILED if failed else NightlyRun.State.DONE
    run.finished_at = timezone.now()
    run.save()
    return run


def _plain(result: Any) -> Any:
    """A job's result as JSON-ready data."""
    if hasattr(result, "as_dict"):
        return result.as_dict()
    if dataclasses.is_dataclass(result):
        return dataclasses.asdict(result)
    return result
