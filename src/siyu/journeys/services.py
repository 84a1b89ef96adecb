"""Journey writes: create, edit (versioned), go live, pause, resume, stop, enrol by hand.

Every change of a journey's status or graph is audited in the same transaction. Editing a
journey that has been live makes a new version: new entrants take it, members in flight finish
on the version they entered.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.audit import audit
from siyu.core.db import among
from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.journeys.definition import parse_definition
from siyu.journeys.models import Enrolment, EnrolmentState, Journey, JourneyStatus, JourneyVersion
from siyu.journeys.triggers import enrol, start_cursors

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_MANUAL = 10_000


def _name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(_("give the journey a name"), code="required", field="name")
    if len(name.strip()) > 100:
        raise ValidationError(_("give a text of at most %(n)s characters") % {"n": 100}, code="too_long",
                              field="name")
    return name.strip()


def create_journey(*, code: str, name: str, definition: dict, description: str = "", actor: str = "",
                   user=None) -> Journey:
    """A new journey in draft with version 1. Rejects ``invalid_code``, ``duplicate_code`` and an
    invalid definition (``invalid_definition`` with the field path)."""
    if not isinstance(code, str) or not _CODE.match(code):
        raise ValidationError(_("give a code of lower-case letters, digits, - and _"), code="invalid_code",
                              field="code")
    name = _name(name)
    parsed = parse_definition(definition)
    with transaction.atomic():
        if Journey.objects.filter(code=code).exists():
            raise Conflict(_("a journey with the code %(code)s exists") % {"code": code}, code="duplicate_code",
                           field="code")
        journey = Journey.objects.create(code=code, name=name, description=description or "")
        version = JourneyVersion.objects.create(journey=journey, number=1, definition=parsed,
                                                trigger_kind=parsed["trigger"]["kind"], created_by=actor[:100])
        journey.current_version = version
        journey.save(update_fields=["current_version"])
        audit(actor=actor, user=user, action="journeys.create", target_type="journey", target_id=journey.pk,
              data={"code": code, "version": 1})
    return journey


def update_journey(*, journey: Journey, name: str | None = None, description: str | None = None,
                   definition: dict | None = None, actor: str = "", user=None) -> Journey:
    """Rename, describe or re-draw a journey. A new graph replaces a draft's version in place if no
    one ever entered it; otherwise it becomes the next version (in-flight members stay on
    theirs). A stopped journey cannot be edited (``journey_stopped``). An unchanged graph makes no
    version."""
    parsed = parse_definition(definition) if definition is not None else None
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk)
        if journey.status == JourneyStatus.STOPPED:
            raise Conflict(_("a stopped journey cannot be edited; copy it into a new one"), code="journey_stopped")
        fields = []
        if name is not None:
            journey.name = _name(name)
            fields.append("name")
        if description is not None:
            journey.description = description
            fields.append("description")
        current = journey.current_version
        if parsed is not None and parsed != current.definition:
            if journey.status == JourneyStatus.DRAFT and not Enrolment.objects.filter(version=current).exists():
                current.definition, current.trigger_kind = parsed, parsed["trigger"]["kind"]
                current.save(update_fields=["definition", "trigger_kind"])
            else:
                current = JourneyVersion.objects.create(journey=journey, number=current.number + 1,
                                                        definition=parsed, trigger_kind=parsed["trigger"]["kind"],
                                                        created_by=actor[:100])
                journey.current_version = current
                fields.append("current_version")
                if journey.status == JourneyStatus.LIVE:
                    start_cursors(journey, parsed, now=timezone.now())
            audit(actor=actor, user=user, action="journeys.edit", target_type="journey", target_id=journey.pk,
                  data={"version": current.number})
        if fields:
            journey.save(update_fields=[*fields, "updated_at"])
    return journey


def _transition(journey: Journey, allowed: Sequence[str], to: str, *, actor: str, user) -> Journey:
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == to:
        return journey  # repeating a transition changes nothing
    if journey.status not in allowed:
        raise Conflict(_("the journey is %(status)s and cannot become %(to)s") % {
            "status": journey.get_status_display(), "to": JourneyStatus(to).label},
            code="invalid_transition", field="status")
    old = journey.status
    journey.status = to
    journey.save(update_fields=["status", "updated_at"])
    audit(actor=actor, user=user, action=f"journeys.{to}", target_type="journey", target_id=journey.pk,
          data={"from": old, "version": journey.current_version.number})
    return journey


def activate_journey(*, journey: Journey, actor: str = "", user=None, now: dt.datetime | None = None) -> Journey:
    """Go live (from draft) or resume (from paused). Triggers read facts from the moment a journey
    first goes live; a resumed journey catches up on what happened while it was paused and its
    due members move on the next tick."""
    with transaction.atomic():
        journey = _transition(journey, (JourneyStatus.DRAFT, JourneyStatus.PAUSED), JourneyStatus.LIVE,
                              actor=actor, user=user)
        start_cursors(journey, journey.current_version.definition, now=now or timezone.now())
    return journey


def pause_journey(*, journey: Journey, actor: str = "", user=None) -> Journey:
    """Pause: nobody enters or moves until it resumes (members keep their place)."""
    with transaction.atomic():
        return _transition(journey, (JourneyStatus.LIVE,), JourneyStatus.PAUSED, actor=actor, user=user)


def stop_journey(*, journey: Journey, actor: str = "", user=None, now: dt.datetime | None = None) -> Journey:
    """Stop for good: every member still in the journey exits (reason ``stopped``)."""
    now = now or timezone.now()
    with transaction.atomic():
        journey = _transition(journey, (JourneyStatus.DRAFT, JourneyStatus.LIVE, JourneyStatus.PAUSED),
                              JourneyStatus.STOPPED, actor=actor, user=user)
        Enrolment.objects.filter(journey=journey, state=EnrolmentState.ACTIVE).update(
            state=EnrolmentState.EXITED, due_at=None, finished_at=now, exit_reason="stopped")
    return journey


def enrol_members(*, journey: Journey, member_ids: Sequence[int], entry_key: str, now: dt.datetime | None = None,
                  actor: str = "") -> int:
    """Put members into a live journey by hand (or from an integration), whatever its trigger.

    Idempotency key: ``entry_key`` per member (for a journey entered once ever, every key is
    "once"). The re-entry policy and control group apply. Rejects ``journey_not_live``,
    ``unknown_member`` (the first unknown id), ``batch_too_large``. Returns how many entered.
    """
    from siyu.members.models import Member

    if not isinstance(entry_key, str) or not entry_key.strip() or len(entry_key) > 90:
        raise ValidationError(_("give an entry key of at most 90 characters"), code="invalid", field="entry_key")
    ids = sorted({int(m) for m in member_ids})
    if len(ids) > MAX_MANUAL:
        raise ValidationError(_("at most %(n)s members per call") % {"n": MAX_MANUAL}, code="batch_too_large",
                              field="member_ids")
    now = now or timezone.now()
    with transaction.atomic():
        journey = Journey.objects.select_related("current_version").get(pk=journey.pk)
        if journey.status != JourneyStatus.LIVE:
            raise Conflict(_("the journey is not live"), code="journey_not_live", field="journey")
        known = set(Member.objects.filter(among("pk", ids), status="active").values_list("pk", flat=True)) \
            if ids else set()
        missing = [m for m in ids if m not in known]
        if missing:
            raise NotFound(_("no active member with id %(id)s") % {"id": missing[0]}, code="unknown_member",
                           field="member_ids")
        return enrol(journey=journey, version=journey.current_version, now=now,
                     facts=[(m, f"manual:{entry_key.strip()}", now, None) for m in ids])


#: The classic lifecycle cadence (DOMAIN.md §8): days after joining.
CADENCE_DAYS = (3, 7, 15, 30, 60, 90, 150)


def cadence_definition(*, template_ids: dict[int, int], at: str = "10:00", goal_days: int | None = 30) -> dict:
    """The 3/7/15/30-day, month 2/3/5 journey as one definition: for each day of
    :data:`CADENCE_DAYS` in ``template_ids`` (``{day: message template id}``), wait until that day
    after joining at ``at`` business time, then send. With ``goal_days``, a first order within that
    many days of joining ends the journey as a conversion. For the demo and as a starting point."""
    steps: list[dict] = []
    for day in CADENCE_DAYS:
        if day in template_ids:
            steps.append({"key": f"d{day}", "kind": "wait", "mode": "days_after_entry", "days": day, "at": at})
            steps.append({"key": f"m{day}", "kind": "send", "template_id": template_ids[day],
                          "label": _("day %(n)s") % {"n": day}})
    definition: dict = {"trigger": {"kind": "joined"}, "reentry": {"policy": "once"}, "steps": steps}
    if goal_days:
        definition["goal"] = {"kind": "order_placed", "within_days": goal_days}
    return definition
