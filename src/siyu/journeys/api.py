"""Journeys API: list, detail with live statistics, create and edit (versioned), go live, pause,
resume and stop, enrol members by hand, and a member's journey history."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema

from siyu.core.api_auth import AUTH_ERRORS, ErrorOut, Moment, api_source, require
from siyu.journeys import selectors, services
from siyu.members.selectors import member_by_ref

router = Router(tags=["journeys"])
ERRORS = {400: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, **AUTH_ERRORS}


READ, WRITE = require("journeys:read"), require("journeys:write")

DEFINITION_EXAMPLE = {
    "trigger": {"kind": "joined"}, "reentry": {"policy": "once"},
    "goal": {"kind": "order_placed", "within_days": 30}, "control_pct": 10,
    "send_window": {"hours": [9, 21], "weekdays": [1, 2, 3, 4, 5, 6, 7]},
    "steps": [{"key": "d3", "kind": "wait", "mode": "days_after_entry", "days": 3, "at": "10:00"},
              {"key": "m3", "kind": "send", "template_id": 1, "label": "第3天关怀"},
              {"key": "d7", "kind": "wait", "mode": "days_after_entry", "days": 7, "at": "10:00"},
              {"key": "m7", "kind": "send", "template_id": 2, "label": "第7天发券提醒"}],
}


class JourneyIn(Schema):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    definition: dict[str, Any] = Field(examples=[DEFINITION_EXAMPLE], description="See docs/journeys.md")


class JourneyUpdateIn(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = None
    definition: dict[str, Any] | None = Field(None, description="A new graph: a new version if the journey has run")


class JourneyOut(Schema):
    code: str
    name: str
    description: str
    status: str
    version: int | None
    trigger: str | None
    created_at: Moment
    updated_at: Moment

    @staticmethod
    def resolve_version(obj) -> int | None:
        return obj.current_version.number if obj.current_version else None

    @staticmethod
    def resolve_trigger(obj) -> str | None:
        return obj.current_version.trigger_kind if obj.current_version else None


class JourneyDetailOut(JourneyOut):
    definition: dict[str, Any]
    stats: dict[str, Any] = Field(description="entered, active, completed, exited, goal_reached, treatment and "
                                              "control conversion, uplift, and per step: members there now and "
                                              "outcomes so far")

    @staticmethod
    def resolve_definition(obj) -> dict:
        return obj.current_version.definition if obj.current_version else {}

    @staticmethod
    def resolve_stats(obj) -> dict:
        return selectors.journey_stats(obj)


class EnrolIn(Schema):
    member_ids: list[int] = Field(min_length=1, max_length=services.MAX_MANUAL)
    entry_key: str = Field(min_length=1, max_length=90, description="Idempotency key of this entry")


class EnrolOut(Schema):
    entered: int


class StepOut(Schema):
    step: str
    label: str
    kind: str
    outcome: str
    detail: str
    at: Moment
    message_id: int | None
    message_status: str | None


class MemberJourneyOut(Schema):
    journey: str
    journey_name: str
    version: int
    state: str
    step: str
    due_at: Moment | None
    entered_at: Moment
    finished_at: Moment | None
    converted_at: Moment | None
    exit_reason: str
    steps: list[StepOut]


@router.get("/journeys", auth=READ, response={200: list[JourneyOut], **AUTH_ERRORS}, summary="List journeys")
def list_journeys(request: HttpRequest):
    return list(selectors.journeys())


@router.post("/journeys", auth=WRITE, response={200: JourneyDetailOut, **ERRORS}, summary="Create a journey")
def create_journey(request: HttpRequest, payload: JourneyIn):
    """The journey starts as a draft; `POST /journeys/{code}/activate` puts it live. An invalid
    definition answers 400 `invalid_definition` with the field path (`steps[2].days`)."""
    journey = services.create_journey(code=payload.code, name=payload.name, description=payload.description,
                                      definition=payload.definition, actor=api_source(request))
    return selectors.journey_by_code(journey.code)


@router.get("/journeys/{code}", auth=READ, response={200: JourneyDetailOut, **ERRORS},
            summary="A journey with its definition and live statistics")
def get_journey(request: HttpRequest, code: str):
    return selectors.journey_by_code(code)


@router.put("/journeys/{code}", auth=WRITE, response={200: JourneyDetailOut, **ERRORS}, summary="Edit a journey")
def update_journey(request: HttpRequest, code: str, payload: JourneyUpdateIn):
    """A new definition of a journey that has run becomes its next version; members in flight
    finish on theirs."""
    services.update_journey(journey=selectors.journey_by_code(code), name=payload.name,
                            description=payload.description, definition=payload.definition,
                            actor=api_source(request))
    return selectors.journey_by_code(code)


def _transition(request: HttpRequest, code: str, service) -> Any:
    service(journey=selectors.journey_by_code(code), actor=api_source(request))
    return selectors.journey_by_code(code)


@router.post("/journeys/{code}/activate", auth=WRITE, response={200: JourneyDetailOut, **ERRORS},
             summary="Go live, or resume a paused journey")
def activate(request: HttpRequest, code: str):
    return _transition(request, code, services.activate_journey)


@router.post("/journeys/{code}/pause", auth=WRITE, response={200: JourneyDetailOut, **ERRORS},
             summary="Pause a live journey")
def pause(request: HttpRequest, code: str):
    return _transition(request, code, services.pause_journey)


@router.post("/journeys/{code}/stop", auth=WRITE, response={200: JourneyDetailOut, **ERRORS},
             summary="Stop a journey for good (members in it exit)")
def stop(request: HttpRequest, code: str):
    return _transition(request, code, services.stop_journey)


@router.post("/journeys/{code}/enrolments", auth=WRITE, response={200: EnrolOut, **ERRORS},
             summary="Put members into a live journey")
def enrol(request: HttpRequest, code: str, payload: EnrolIn):
    """Re-sending the same `entry_key` enters nobody again. The re-entry policy and the control
    group apply."""
    entered = services.enrol_members(journey=selectors.journey_by_code(code), member_ids=payload.member_ids,
                                     entry_key=payload.entry_key, actor=api_source(request))
    return {"entered": entered}


@router.get("/journeys/members/{ref}/history", auth=READ, response={200: list[MemberJourneyOut], **ERRORS},
            summary="A member's journeys with every step and message")
def member_history(request: HttpRequest, ref: str):
    """`ref` as in `GET /members/{ref}`. Newest journey first; steps in the order they ran."""
    member = member_by_ref(ref).member
    return selectors.member_journeys(member.pk)

