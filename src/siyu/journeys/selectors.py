"""Journey reads: the list, live statistics, and a member's journey history.

``member_journeys(member_id)`` is what the member console page shows: every journey the member
entered, each with its step log (step, outcome, time) and the messages its steps queued.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Q, QuerySet

from siyu.core.errors import NotFound
from siyu.journeys.definition import step_map
from siyu.journeys.models import Enrolment, EnrolmentState, Journey, StepLog

MAX_HISTORY = 50


def journeys() -> QuerySet[Journey]:
    return Journey.objects.select_related("current_version").order_by("-id")


def journey_by_code(code: str) -> Journey:
    journey = journeys().filter(code=code).first()
    if journey is None:
        raise NotFound(f"no journey {code}", code="not_found", field="code")
    return journey


def journey_counts(journey_ids: list[int]) -> dict[int, dict[str, int]]:
    """``{journey_id: {"entered", "active", "goal_reached"}}`` for a list page, in one query over
    the enrolments (no step log)."""
    counts: dict[int, dict[str, int]] = {pk: {"entered": 0, "active": 0, "goal_reached": 0} for pk in journey_ids}
    rows = (Enrolment.objects.filter(journey_id__in=journey_ids).values("journey_id")
            .annotate(entered=Count("id"), active=Count("id", filter=Q(state=EnrolmentState.ACTIVE)),
                      goal_reached=Count("id", filter=Q(converted_at__isnull=False))).order_by())
    for row in rows:
        counts[row.pop("journey_id")] = row
    return counts


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def journey_stats(journey: Journey) -> dict:
    """Entered, where members are now, goal reached, exited; conversion of the treated members
    against the control group; and per step, how many passed it with which outcome."""
    rows = (Enrolment.objects.filter(journey=journey).values("state", "step")
            .annotate(n=Count("id"), converted=Count("id", filter=Q(converted_at__isnull=False))))
    by_state: dict[str, int] = defaultdict(int)
    in_step: dict[str, int] = defaultdict(int)
    treated = treated_converted = control = control_converted = 0
    for row in rows:
        by_state[row["state"]] += row["n"]
        if row["state"] == EnrolmentState.ACTIVE:
            in_step[row["step"]] += row["n"]
        if row["state"] == EnrolmentState.CONTROL:
            control += row["n"]
            control_converted += row["converted"]
        else:
            treated += row["n"]
            treated_converted += row["converted"]
    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    for row in (StepLog.objects.filter(journey=journey).exclude(step="_goal").values("step", "outcome")
                .annotate(n=Count("id")).order_by()):
        outcomes[row["step"]][row["outcome"]] = row["n"]
    entered = treated + control
    steps = []
    definition = journey.current_version.definition if journey.current_version else {"steps": []}
    for step in definition["steps"]:
        steps.append({"key": step["key"], "kind": step["kind"], "label": step.get("label", ""),
                      "now": in_step.get(step["key"], 0), "outcomes": outcomes.get(step["key"], {})})
    return {
        "entered": entered,
        "active": by_state[EnrolmentState.ACTIVE],
        "completed": by_state[EnrolmentState.COMPLETED],
        "exited": by_state[EnrolmentState.EXITED],
        "goal_reached": treated_converted + control_converted,
        "treatment": {"members": treated, "converted": treated_converted,
                      "rate": _rate(treated_converted, treated)},
        "control": {"members": control, "converted": control_converted, "rate": _rate(control_converted, control)},
        "uplift": (round(treated_converted / treated - control_converted / control, 4)
                   if treated and control else None),
        "steps": steps,
    }


def member_journeys(member_id: int, *, limit: int = MAX_HISTORY) -> list[dict]:
    """The member's journeys, newest first: each enrolment with its steps in order (step key,
    label, kind, outcome, detail, time, and for sends the outbox message's id and status)."""
    enrolments = list(Enrolment.objects.filter(member_id=member_id).select_related("journey", "version")
                      .order_by("-entered_at", "-id")[:limit])
    if not enrolments:
        return []
    logs = defaultdict(list)
    for log in StepLog.objects.filter(member_id=member_id, enrolment_id__in=[e.pk for e in enrolments]).order_by(
            "at", "id"):
        logs[log.enrolment_id].append(log)
    statuses = _message_statuses(member_id, [log.message_id for entries in logs.values() for log in entries
                                             if log.message_id])
    out = []
    for enrolment in enrolments:
        steps = step_map(enrolment.version.definition)
        out.append({
            "journey": enrolment.journey.code, "journey_name": enrolment.journey.name,
            "version": enrolment.version.number, "state": enrolment.state, "step": enrolment.step,
            "due_at": enrolment.due_at, "entered_at": enrolment.entered_at, "finished_at": enrolment.finished_at,
            "converted_at": enrolment.converted_at, "exit_reason": enrolment.exit_reason,
            "steps": [{"step": log.step, "label": steps.get(log.step, {}).get("label", ""), "kind": log.kind,
                       "outcome": log.outcome, "detail": log.detail, "at": log.at, "message_id": log.message_id,
                       "message_status": statuses.get(log.message_id)} for log in logs[enrolment.pk]],
        })
    return out


def _message_statuses(member_id: int, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    from siyu.messaging.selectors import messages_for_member

    wanted = set(ids)
    found: dict[int, str] = {}
    before = None
    while wanted - set(found):  # page back through the member's outbox until every id is seen
        page = messages_for_member(member_id, before_id=before, limit=200)
        found.update({m.pk: m.status for m in page.messages if m.pk in wanted})
        if page.next is None or page.next < min(wanted):
            break
        before = page.next
    return found
