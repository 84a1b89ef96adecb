"""Entering and converting: cursors over the append-only fact tables.

Each journey keeps one :class:`~siyu.journeys.models.TriggerCursor` per source it reads (its
trigger, its goal). A tick locks the cursor row (``SKIP LOCKED``: a worker finding it held leaves
that source to the holder), reads the facts after it in id order, enrols or converts the members
they name and moves the cursor, all in one transaction, so a restart resumes where the last
committed read stopped and re-reading a fact enrols nobody twice (the enrolment's unique
``(journey, member, entry_key)``).

Daily sources (birthdays) keep the last business day scanned; schedules the last run time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from siyu.core.db import among, chunked, note_bulk_write, update_rows
from siyu.core.time import business_date, business_zone, start_of_day
from siyu.journeys.definition import first_step
from siyu.journeys.models import Enrolment, EnrolmentState, Journey, StepLog, StepOutcome, TriggerCursor
from siyu.journeys.timing import bucket

#: Facts read per source per tick (a large backlog drains over a few ticks).
CHUNK = 5000
MAX_CHUNKS = 20
INSERT_BATCH = 2000


# -- sources -------------------------------------------------------------------------------------

def _source(kind: str):
    """``(queryset, fact → (member_id, entry_ref, anchor_at))`` of an id-cursor source."""
    from siyu.analytics.models import ModelChange
    from siyu.commerce.models import Order
    from siyu.events.models import Event
    from siyu.loyalty.models import TierChange
    from siyu.members.models import Member
    from siyu.segments.models import SegmentMembership
    from siyu.tags.models import MemberTagChange

    return {
        "joined": (Member, "joined_at", "member"),
        "days_after_joining": (Member, "joined_at", "member"),
        "order_placed": (Order, "ordered_at", "order"),
        "event": (Event, "occurred_at", "event"),
        "tag_added": (MemberTagChange, "at", "tag"),
        "lifecycle_changed": (ModelChange, "at", "model"),
        "rfm_changed": (ModelChange, "at", "model"),
        "segment_entered": (SegmentMembership, "entered_at", "segment"),
        "tier_changed": (TierChange, "changed_at", "tier"),
    }[kind]


def _facts(spec: dict, after: int):
    """The source's facts after id ``after`` matching the spec's filters, in id order:
    ``(id, member_id, at)`` rows."""
    model, at_field, _prefix = _source(spec["kind"])
    kind = spec["kind"]
    qs = model.objects.filter(pk__gt=after)
    member = "pk" if model.__name__ == "Member" else "member_id"
    if kind in ("joined", "days_after_joining"):
        qs = qs.filter(status="active")
    elif kind == "order_placed":
        from siyu.commerce.models import Order

        qs = qs.filter(member__isnull=False, is_counted=True)
        if spec.get("channels"):
            qs = qs.filter(channel__code__in=spec["channels"])
        if spec.get("min_amount"):
            qs = qs.filter(paid_amount__gte=spec["min_amount"])
        if spec.get("first_order"):
            earlier = Order.objects.filter(member_id=OuterRef("member_id"), is_counted=True).filter(
                Q(ordered_at__lt=OuterRef("ordered_at")) | Q(ordered_at=OuterRef("ordered_at"), pk__lt=OuterRef("pk")))
            qs = qs.filter(~Exists(earlier))
    elif kind == "event":
        if spec.get("event_kind"):
            qs = qs.filter(kind=spec["event_kind"])
    elif kind == "tag_added":
        qs = qs.filter(action="added", tag__code__in=spec["tags"])
    elif kind in ("lifecycle_changed", "rfm_changed"):
        qs = qs.filter(kind="lifecycle" if kind == "lifecycle_changed" else "rfm", new_value__in=spec["values"])
    elif kind == "segment_entered":
        qs = qs.filter(segment__code=spec["segment"])
    elif kind == "tier_changed":
        if spec.get("tiers"):
            qs = qs.filter(to_tier__code__in=spec["tiers"])
        if spec.get("reason"):
            qs = qs.filter(reason=spec["reason"])
    return qs.order_by("pk").values_list("pk", member, at_field)


def _last_id(kind: str) -> int:
    model = _source(kind)[0]
    return model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def start_cursors(journey: Journey, definition: dict, *, now: dt.datetime) -> None:
    """Place the journey's cursors at the end of their sources: a journey going live reacts to
    what happens from now on. Existing cursors (a new version, a resume) keep their place."""
    specs = [("trigger", definition["trigger"])]
    if definition.get("goal"):
        specs.append(("goal", definition["goal"]))
    for role, spec in specs:
        kind = spec["kind"]
        source = f"{role}:{kind}"
        if TriggerCursor.objects.filter(journey=journey, source=source).exists():
            continue
        if kind == "birthday":
            TriggerCursor.objects.create(journey=journey, source=source,
                                         position_at=start_of_day(business_date(now)) - dt.timedelta(days=1))
        elif kind == "schedule":
            TriggerCursor.objects.create(journey=journey, source=source, position_at=None)
        elif kind != "manual":
            TriggerCursor.objects.create(journey=journey, source=source, position=_last_id(kind))


def _locked_cursor(journey: Journey, source: str) -> TriggerCursor | None:
    queryset = TriggerCursor.objects.filter(journey=journey, source=source)
    if connection.vendor != "sqlite":
        queryset = queryset.select_for_update(skip_locked=True)
    return queryset.first()


# -- entering ------------------------------------------------------------------------------------

def enter_from_triggers(journey: Journey, *, now: dt.datetime) -> int:
    """Enrol the members the journey's trigger names since its cursor; returns how many entered."""
    version = journey.current_version
    spec = version.definition["trigger"]
    kind = spec["kind"]
    if kind == "manual":
        return 0
    source = f"trigger:{kind}"
    if not TriggerCursor.objects.filter(journey=journey, source=source).exists():
        start_cursors(journey, version.definition, now=now)
    entered = 0
    for _chunk in range(MAX_CHUNKS):
        with transaction.atomic():
            cursor = _locked_cursor(journey, source)
            if cursor is None:
                return entered
            if kind == "birthday":
                return entered + _birthdays(journey, version, spec, cursor, now)
            if kind == "schedule":
                return entered + _schedule(journey, version, spec, cursor, now)
            rows = list(_facts(spec, cursor.position)[:CHUNK])
            if not rows:
                return entered
            prefix = _source(kind)[2]
            delay = dt.timedelta(days=spec.get("days") or 0)
            facts = [(member_id, f"{prefix}:{pk}", at, at + delay if kind == "days_after_joining" else None)
                     for pk, member_id, at in rows if member_id]
            entered += enrol(journey=journey, version=version, facts=facts, now=now)
            cursor.position = rows[-1][0]
            cursor.save(update_fields=["position", "updated_at"])
        if len(rows) < CHUNK:
            break
    return entered


def _birthdays(journey, version, spec, cursor, now) -> int:
    from siyu.members.models import Member

    today = business_date(now)
    day = timezone.localtime(cursor.position_at, business_zone()).date() + dt.timedelta(days=1)
    entered = 0
    while day <= today:
        birthday = day + dt.timedelta(days=spec["days_before"])
        members = Member.objects.filter(status="active", birthday__month=birthday.month, birthday__day=birthday.day)
        if birthday.month == 2 and birthday.day == 28 and not _leap(birthday.year):
            members = Member.objects.filter(Q(birthday__month=2) & Q(birthday__day__in=[28, 29]), status="active")
        anchor = max(start_of_day(day), now - dt.timedelta(days=1)) if day < today else now
        ids = list(members.order_by("pk").values_list("pk", flat=True))
        for part in chunked(ids, CHUNK):
            entered += enrol(journey=journey, version=version, now=now,
                             facts=[(m, f"birthday:{birthday.year}", anchor, None) for m in part])
        cursor.position_at = start_of_day(day)
        day += dt.timedelta(days=1)
    cursor.save(update_fields=["position_at", "updated_at"])
    return entered


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _schedule(journey, version, spec, cursor, now) -> int:
    """Run the schedule's latest due firing (missed older ones are not replayed): snapshot the
    segment and enrol its members."""
    from siyu.segments.models import Segment, SnapshotMember
    from siyu.segments.services import take_snapshot

    first = dt.datetime.fromisoformat(spec["at"])
    if first.tzinfo is None:
        first = first.replace(tzinfo=business_zone())
    if first > now:
        return 0
    fire = first
    if spec.get("every_days"):
        period = dt.timedelta(days=spec["every_days"])
        fire = first + ((now - first) // period) * period
    if cursor.position_at is not None and cursor.position_at >= fire:
        return 0
    segment = Segment.objects.filter(code=spec["segment"]).first()
    entered = 0
    if segment is not None:
        snapshot = take_snapshot(segment=segment, name=f"journey {journey.code} {fire:%Y-%m-%d %H:%M}",
                                 actor=f"journey:{journey.code}"[:100], now=now)
        ids = list(SnapshotMember.objects.filter(snapshot=snapshot).order_by("member_id")
                   .values_list("member_id", flat=True))
        ref = f"schedule:{int(fire.timestamp())}"
        for part in chunked(ids, CHUNK):
            entered += enrol(journey=journey, version=version, now=now, facts=[(m, ref, now, None) for m in part])
    cursor.position_at = fire
    cursor.save(update_fields=["position_at", "updated_at"])
    return entered


def enrol(*, journey: Journey, version, facts: Iterable[tuple[int, str, dt.datetime, dt.datetime | None]],
          now: dt.datetime) -> int:
    """Enrol members into ``version`` of ``journey``: ``facts`` are ``(member_id, entry_ref, anchor_at,
    first_due_at)`` (``first_due_at`` None: now). Applies the re-entry policy and the control group;
    a member already entered with the same entry key is skipped. Returns how many entered."""
    definition = version.definition
    policy = definition["reentry"]["policy"]
    seen: dict[int, tuple] = {}
    for fact in facts:
        seen.setdefault(fact[0], fact)
    if not seen:
        return 0
    ids = sorted(seen)
    if policy != "once":
        busy = Enrolment.objects.filter(among("member_id", ids), journey=journey)
        recent = Q(state=EnrolmentState.ACTIVE)
        if policy == "period":
            recent |= Q(entered_at__gt=now - dt.timedelta(days=definition["reentry"]["period_days"]))
        blocked = set(busy.filter(recent).values_list("member_id", flat=True))
        ids = [m for m in ids if m not in blocked]
    control_pct = definition.get("control_pct") or 0
    step = first_step(definition)
    rows = []
    for member_id in ids:
        _m, ref, anchor, due = seen[member_id]
        key = "once" if policy == "once" else ref[:100]
        due = due or now
        if control_pct and bucket(f"journey:{journey.pk}:control", member_id) < control_pct:
            rows.append(Enrolment(journey_id=journey.pk, version_id=version.pk, member_id=member_id, entry_key=key,
                                  state=EnrolmentState.CONTROL, step="", due_at=None, step_since=now,
                                  anchor_at=anchor, entered_at=now))
        else:
            rows.append(Enrolment(journey_id=journey.pk, version_id=version.pk, member_id=member_id, entry_key=key,
                                  step=step, due_at=due, step_since=due, anchor_at=anchor, entered_at=now))
    if not rows:
        return 0
    keys = {r.entry_key for r in rows}
    entered = {(m, k) for part in chunked(ids, CHUNK) for m, k in Enrolment.objects.filter(
        among("member_id", part), journey=journey, entry_key__in=keys).values_list("member_id", "entry_key")}
    rows = [r for r in rows if (r.member_id, r.entry_key) not in entered]
    _insert_enrolments(rows)
    note_bulk_write(Enrolment, len(rows))
    return len(rows)


_ENROLMENT_FIELDS = ("journey_id", "version_id", "member_id", "entry_key", "state", "step", "due_at", "step_since",
                     "anchor_at", "entered_at", "exit_reason")


def _insert_enrolments(rows: list[Enrolment]) -> None:
    """Insert enrolments; one that clashes on ``(journey, member, entry_key)`` (a concurrent
    enrolment of the same key) is skipped quietly. PostgreSQL gets one ``INSERT … SELECT FROM
    unnest(…) ON CONFLICT DO NOTHING`` per chunk (``bulk_create`` prepares every value through its
    field, which costs more than the insert)."""
    if connection.vendor != "postgresql":
        Enrolment.objects.bulk_create(rows, ignore_conflicts=True, batch_size=INSERT_BATCH)
        return
    meta = Enrolment._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in _ENROLMENT_FIELDS]
    columns = ", ".join(quote(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sql = (f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT * FROM unnest({arrays}) "  # noqa: S608
           "ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        for part in chunked(rows, 10_000):
            cursor.execute(sql, [[getattr(r, name) for r in part] for name in _ENROLMENT_FIELDS])


# -- goals ---------------------------------------------------------------------------------------

def check_goals(journey: Journey, *, now: dt.datetime) -> int:
    """Mark enrolments whose member reached the journey's goal since the goal cursor as converted;
    members still in the journey leave it. Returns how many converted."""
    goal = journey.current_version.definition.get("goal")
    if not goal:
        return 0
    source = f"goal:{goal['kind']}"
    if not TriggerCursor.objects.filter(journey=journey, source=source).exists():
        start_cursors(journey, journey.current_version.definition, now=now)
    converted = 0
    for _chunk in range(MAX_CHUNKS):
        with transaction.atomic():
            cursor = _locked_cursor(journey, source)
            if cursor is None:
                return converted
            rows = list(_facts(goal, cursor.position)[:CHUNK])
            if not rows:
                return converted
            reached: dict[int, dt.datetime] = {}
            for _pk, member_id, at in rows:
                if member_id and (member_id not in reached or at < reached[member_id]):
                    reached[member_id] = at
            converted += convert(journey=journey, reached=reached, within=dt.timedelta(days=goal["within_days"]),
                                 now=now)
            cursor.position = rows[-1][0]
            cursor.save(update_fields=["position", "updated_at"])
        if len(rows) < CHUNK:
            break
    return converted


def convert(*, journey: Journey, reached: dict[int, dt.datetime], within: dt.timedelta, now: dt.datetime) -> int:
    """Record the goal for the members of ``reached`` (``{member_id: when}``) whose enrolment was
    open (or completed) when they reached it, within ``within`` of entering."""
    states = [EnrolmentState.ACTIVE, EnrolmentState.CONTROL, EnrolmentState.COMPLETED]
    queryset = Enrolment.objects.filter(among("member_id", sorted(reached)), journey=journey,
                                        converted_at__isnull=True, state__in=states).order_by("pk")
    if connection.vendor != "sqlite":
        queryset = queryset.select_for_update()
    hits = [(pk, member_id, state) for pk, member_id, state, entered_at in
            queryset.values_list("pk", "member_id", "state", "entered_at")
            if entered_at < reached[member_id] <= entered_at + within]
    if not hits:
        return 0
    leaving = [pk for pk, _m, state in hits if state == EnrolmentState.ACTIVE]
    update_rows(Enrolment, ("converted_at",), [(pk, reached[member_id]) for pk, member_id, _s in hits])
    if leaving:
        Enrolment.objects.filter(among("pk", leaving)).update(state=EnrolmentState.CONVERTED, due_at=None,
                                                              finished_at=now, exit_reason="goal")
    StepLog.objects.bulk_create([StepLog(enrolment_id=pk, journey_id=journey.pk, member_id=member_id, step="_goal",
                                         kind="goal", outcome=StepOutcome.CONVERTED, at=reached[member_id])
                                 for pk, member_id, _s in hits], ignore_conflicts=True)
    return len(hits)
