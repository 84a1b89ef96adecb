"""Console pages: list, create (errors name the field), the diagram and statistics, go live /
pause / stop, edit into a new version, a member's journey history, and permissions."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from siyu.journeys import services
from siyu.journeys.engine import tick
from siyu.journeys.models import Journey
from tests.factories import make_user
from tests.journeys.conftest import member, template

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(db):
    from django.contrib.auth import get_user_model

    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(get_user_model().objects.create_superuser(username="boss", password="pw-123456"))
    return client


def definition(template_id: int) -> dict:
    return {"trigger": {"kind": "manual"},
            "steps": [{"key": "hi", "kind": "send", "template_id": template_id, "label": "Welcome"},
                      {"key": "ok", "kind": "condition", "rule": {"attr": "city", "op": "eq", "value": "上海"},
                       "yes": "tag", "no": "exit"},
                      {"key": "tag", "kind": "wait", "mode": "duration", "days": 1}]}


def test_create_go_live_and_see_the_diagram_with_live_counts(boss):
    hello = template("hello")
    response = boss.post("/console/journeys/new/?json=1", {"code": "welcome", "name": "Welcome", "description": "",
                                                    "definition": json.dumps(definition(hello.pk))})
    assert response.status_code == 302 and response["Location"] == "/console/journeys/welcome/"
    assert boss.post("/console/journeys/welcome/activate/").status_code == 302
    journey = Journey.objects.get(code="welcome")
    assert journey.status == "live"
    someone = member(city="上海")
    services.enrol_members(journey=journey, member_ids=[someone.pk], entry_key="k")
    tick(now=timezone.now())

    page = boss.get("/console/journeys/welcome/").content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert 'data-step="hi"' in page and 'data-step="exit"' in page
    assert 'data-stat="entered">1<' in page
    assert "here now 1 · passed 0" in page  # the member waits at "tag"
    listing = boss.get("/console/journeys/").content.decode()
    assert 'data-journey="welcome"' in listing

    history = boss.get(f"/console/journeys/members/{someone.pk}/").content.decode()
    assert 'data-outcome="sent"' in history and 'data-outcome="yes"' in history


def test_an_invalid_definition_is_shown_with_its_field_and_nothing_is_saved(boss):
    response = boss.post("/console/journeys/new/?json=1", {"code": "bad", "name": "Bad", "definition": json.dumps(
        {"trigger": {"kind": "manual"}, "steps": [{"key": "w", "kind": "wait", "mode": "duration"}]})})
    assert response.status_code == 200
    assert "steps[0].days: give a duration in days, hours or minutes" in response.content.decode()
    assert not Journey.objects.exists()


def test_editing_a_live_journey_in_the_console_makes_version_two(boss):
    hello = template("hello")
    journey = services.create_journey(code="welcome", name="Welcome", definition=definition(hello.pk))
    services.activate_journey(journey=journey)
    changed = definition(hello.pk)
    changed["steps"][2]["days"] = 2
    response = boss.post("/console/journeys/welcome/edit/?json=1", {"name": "Welcome", "description": "",
                                                             "definition": json.dumps(changed)})
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.current_version.number == 2
    boss.post("/console/journeys/welcome/pause/")
    assert Journey.objects.get().status == "paused"
    boss.post("/console/journeys/welcome/stop/")
    assert Journey.objects.get().status == "stopped"


def test_pages_need_the_journey_permissions(db):
    hello = template("hello")
    services.create_journey(code="welcome", name="Welcome", definition=definition(hello.pk))
    viewer = Client()
    viewer.force_login(make_user("viewer", "journeys.view_journey"))
    assert viewer.get("/console/journeys/welcome/").status_code == 200
    assert viewer.post("/console/journeys/welcome/activate/").status_code == 403
    assert viewer.get("/console/journeys/new/").status_code == 403
    assert Journey.objects.get().status == "draft"


def editor_post(rows: list[dict], **settings) -> dict:
    data = {"code": "cadence", "name": "Cadence", "description": "", "trigger_kind": "joined", "trigger_options": "",
            "reentry": "once", "period_days": "", "goal_kind": "order_placed", "goal_within_days": "30",
            "goal_options": "", "control_pct": "10", "window_start": "9", "window_end": "21",
            "weekdays": ["1", "2", "3", "4", "5"], **settings,
            "steps-TOTAL_FORMS": str(len(rows)), "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "0",
            "steps-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"steps-{i}-{key}"] = value
    return data


def test_the_step_list_editor_builds_the_definition(boss):
    hello = template("hello")
    page = boss.get("/console/journeys/new/").content.decode()
    assert 'name="steps-0-key"' in page and "days_after_entry" in page  # the example journey
    rows = [{"key": "d3", "kind": "wait", "label": "", "next": "",
             "options": '{"mode": "days_after_entry", "days": 3, "at": "10:00"}'},
            {"key": "m3", "kind": "send", "label": "第3天", "next": "",
             "options": json.dumps({"template_id": hello.pk})},
            {"key": "", "kind": "", "label": "", "next": "", "options": ""}]
    response = boss.post("/console/journeys/new/", editor_post(rows))
    assert response.status_code == 302
    definition = Journey.objects.get(code="cadence").current_version.definition
    assert [(s["key"], s["kind"], s.get("label")) for s in definition["steps"]] == [
        ("d3", "wait", ""), ("m3", "send", "第3天")]
    assert definition["steps"][0]["days"] == 3 and definition["steps"][1]["template_id"] == hello.pk
    assert definition["goal"] == {"kind": "order_placed", "within_days": 30, "channels": [], "first_order": False}
    assert (definition["control_pct"], definition["send_window"]) == (10, {"hours": [9, 21],
                                                                           "weekdays": [1, 2, 3, 4, 5]})
    edit = boss.get("/console/journeys/cadence/edit/").content.decode()
    assert 'value="m3"' in edit


def test_the_step_list_editor_shows_an_error_on_its_row(boss):
    rows = [{"key": "w", "kind": "wait", "label": "", "next": "", "options": '{"mode": "duration"}'},
            {"key": "x", "kind": "exit", "label": "", "next": "", "options": "{not json"}]
    response = boss.post("/console/journeys/new/", editor_post(rows))
    assert response.status_code == 200
    assert 'data-error="steps-1-options"' in response.content.decode()  # the JSON error, before the service
    rows[1]["options"] = ""
    response = boss.post("/console/journeys/new/", editor_post(rows))
    page = response.content.decode()
    assert 'data-error="steps-0-options"' in page
    assert "steps[0].days: give a duration in days, hours or minutes" in page
    assert not Journey.objects.exists()
