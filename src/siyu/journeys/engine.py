"""The journey engine: the worker's tick moves every due member of a step together.

``tick()`` (called by ``siyu worker`` every few seconds, and by tests with ``now=``) does, for
every live journey:

1. **enter**: read the trigger source past the journey's cursor and enrol the members it names
   (:mod:`siyu.journeys.triggers`);
2. **goal**: read the goal source past its cursor and mark open enrolments converted;
3. **move**: claim due enrolments in batches (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL
   and MariaDB, so several workers share the work) and carry each batch through as many steps as
   are due now, step by step, each step's action done once for the whole group at that step.

Each batch is one transaction: its actions (outbox rows, coupons, points, tags, tasks), its
step log rows and the enrolments' new positions commit together or not at all. A worker that
dies mid-batch leaves the enrolments where they were; the next tick redoes the batch, and the
idempotency keys derived from ``(enrolment, step)`` plus the unique step log make sure nothing
happens twice. Late ticks catch up: a step's logical time is the time it was due, so waits
counted from it keep their schedule.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from siyu.core.db import among, insert_rows, note_bulk_write, update_rows
from siyu.journeys.definition import END, step_map
from siyu.journeys.models import Enrolment, EnrolmentState, Journey, JourneyStatus, JourneyVersion, StepLog
from siyu.journeys.steps import Context, Item, Move, Stay, run_step

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
_LOG_FIELDS = ("enrolment_id", "journey_id", "member_id", "step", "kind", "outcome", "detail", "message_id", "at")


def tick(*, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE, max_batches: int | None = None) -> int:
    """Enter, convert and advance every live journey; returns how many step moves were made."""
    from siyu.journeys.triggers import check_goals, enter_from_triggers

    now = now or timezone.now()
    live = list(Journey.objects.filter(status=JourneyStatus.LIVE, current_version__isnull=False)
                .select_related("current_version"))
    for journey in live:
        enter_from_triggers(journey, now=now)
        check_goals(journey, now=now)
    return run_due(now=now, batch_size=batch_size, journey_ids=[j.pk for j in live], max_batches=max_batches)


def run_due(*, now: dt.datetime, batch_size: int = BATCH_SIZE, journey_ids: list[int] | None = None,
            max_batches: int | None = None) -> int:
    """Claim and advance due enrolments of ``journey_ids`` (default: the live journeys) until none is due."""
    if journey_ids is None:
        journey_ids = list(Journey.objects.filter(status=JourneyStatus.LIVE).values_list("pk", flat=True))
    if not journey_ids:
        return 0
    moved = batches = 0
    versions: dict[int, Context] = {}
    after: tuple[dt.datetime, int] | None = None
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            rows = claim(now=now, journey_ids=journey_ids, limit=batch_size, after=after)
            if not rows:
                break
            after = (rows[-1].due_at, rows[-1].pk)
            moved += advance(rows, now=now, versions=versions)
        batches += 1
    return moved


def claim(*, now: dt.datetime, journey_ids: list[int], limit: int,
          after: tuple[dt.datetime, int] | None = None) -> list[Item]:
    """Lock up to ``limit`` due enrolments in ``(due_at, id)`` order, skipping those another
    worker holds, from ``after`` on (the last one this run claimed).

    The ``(state, due_at, id)`` index serves the order and the scan stops at ``limit``; starting
    after the last claimed row skips the index entries of the enrolments this run has already
    moved (dead until vacuum), which a scan from the start would wade through on every batch.
    Whatever lies behind ``after`` is done or held by another worker; the next tick starts afresh.
    """
    queryset = (Enrolment.objects.filter(among("journey_id", journey_ids), state=EnrolmentState.ACTIVE,
                                         due_at__lte=now)
                .order_by("due_at", "pk"))
    if after is not None:
        if connection.vendor == "postgresql":
            queryset = queryset.extra(where=['("journeys_enrolment"."due_at", "journeys_enrolment"."id") > (%s, %s)'],
                                      params=[after[0], after[1]])
        else:
            queryset = queryset.filter(Q(due_at__gt=after[0]) | Q(due_at=after[0], pk__gt=after[1]))
    if connection.vendor != "sqlite":
        queryset = queryset.select_for_update(skip_locked=True)
    return [Item(*row) for row in queryset.values_list(
        "pk", "journey_id", "version_id", "member_id", "step", "due_at", "step_since", "anchor_at")[:limit]]


def _context(version_id: int, now: dt.datetime, versions: dict[int, Context]) -> Context:
    ctx = versions.get(version_id)
    if ctx is None:
        version = JourneyVersion.objects.select_related("journey").get(pk=version_id)
        ctx = Context(journey_id=version.journey_id, journey_code=version.journey.code, version_id=version.pk,
                      version_number=version.number, definition=version.definition, now=now,
                      steps=step_map(version.definition))
        versions[version_id] = ctx
    ctx.now = now
    return ctx


def advance(items: list[Item], *, now: dt.datetime, versions: dict[int, Context] | None = None) -> int:
    """Carry claimed ``items`` through every step due by ``now``; write logs and new positions."""
    versions = {} if versions is None else versions
    logs: list[tuple] = []
    finished: dict[tuple[str, str], list[int]] = defaultdict(list)  # (state, reason) -> ids
    placed: dict[tuple[str, dt.datetime, dt.datetime], list[int]] = defaultdict(list)  # (step, due, since) -> ids
    moved = 0
    pending = items
    while pending:
        groups: dict[tuple[int, str], list[Item]] = defaultdict(list)
        for item in pending:
            groups[(item.version_id, item.step)].append(item)
        pending = []
        for (version_id, key), group in groups.items():
            ctx = _context(version_id, now, versions)
            step = ctx.steps.get(key)
            if step is None:  # cannot happen for a validated definition; never stall on it
                for item in group:
                    finished[(EnrolmentState.EXITED, "unknown_step")].append(item.pk)
                continue
            for result in run_step(step, group, ctx):
                item = result.item
                if isinstance(result, Stay):
                    placed[(item.step, result.due_at, item.step_since)].append(item.pk)
                    continue
                assert isinstance(result, Move)
                moved += 1
                logs.append((item.pk, item.journey_id, item.member_id, key, step["kind"], result.outcome,
                             result.detail[:200], result.message_id, now))
                if result.next == END:
                    state = EnrolmentState.EXITED if step["kind"] == "exit" else EnrolmentState.COMPLETED
                    finished[(state, "exit_step" if step["kind"] == "exit" else "")].append(item.pk)
                    continue
                item.step, item.step_since, item.due_at = result.next, result.at, result.at
                if result.at <= now:
                    pending.append(item)
                else:
                    placed[(item.step, item.due_at, item.step_since)].append(item.pk)
    _write(logs, finished, placed, now)
    return moved


def _write(logs, finished, placed, now: dt.datetime) -> None:
    insert_rows(StepLog, _LOG_FIELDS, logs, chunk_size=1000)
    note_bulk_write(StepLog, len(logs))
    note_bulk_write(Enrolment, sum(len(ids) for ids in finished.values()) + len(placed))
    for (state, reason), ids in finished.items():
        Enrolment.objects.filter(among("pk", ids)).update(state=state, exit_reason=reason, due_at=None,
                                                          finished_at=now)
    if len(placed) <= 3:  # the usual case: the whole batch moved to the same wait
        for (step, due_at, since), ids in placed.items():
            Enrolment.objects.filter(among("pk", ids)).update(step=step, due_at=due_at, step_since=since)
    else:
        update_rows(Enrolment, ("step", "due_at", "step_since"),
                    [(pk, step, due_at, since) for (step, due_at, since), ids in placed.items() for pk in ids])
