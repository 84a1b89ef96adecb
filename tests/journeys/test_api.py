"""The journeys API over real HTTP: create, go live, enrol, statistics and a member's history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from siyu.journeys.engine import tick
from siyu.journeys.models import Journey
from tests.factories import make_token
from tests.journeys.conftest import member, template

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(db):
    token = make_token("crm", "journeys:write")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_LANGUAGE="en")

    def call(method: str, path: str, body=None):
        response = getattr(client, method)(f"/api/v1{path}", body, content_type="application/json")
        return response.status_code, response.json()

    return call


def definition(template_id: int) -> dict:
    return {"trigger": {"kind": "manual"}, "control_pct": 0,
            "steps": [{"key": "hi", "kind": "send", "template_id": template_id, "label": "欢迎"},
                      {"key": "w", "kind": "wait", "mode": "duration", "days": 1},
                      {"key": "bye", "kind": "send", "template_id": template_id}]}


def test_create_activate_enrol_and_read_stats_and_history(api):
    hello = template("hello")
    status, body = api("post", "/journeys", {"code": "welcome", "name": "欢迎旅程", "definition": definition(hello.pk)})
    assert status == 200
    assert (body["status"], body["version"], body["trigger"]) == ("draft", 1, "manual")
    assert api("post", "/journeys/welcome/activate")[1]["status"] == "live"
    someone = member()
    status, body = api("post", "/journeys/welcome/enrolments", {"member_ids": [someone.pk], "entry_key": "batch-1"})
    assert (status, body) == (200, {"entered": 1})
    assert api("post", "/journeys/welcome/enrolments", {"member_ids": [someone.pk], "entry_key": "batch-1"})[1] == {
        "entered": 0}
    tick(now=timezone.now() + dt.timedelta(minutes=1))

    status, body = api("get", "/journeys/welcome")
    stats = body["stats"]
    assert (stats["entered"], stats["active"], stats["completed"]) == (1, 1, 0)
    assert [(s["key"], s["now"], s["outcomes"]) for s in stats["steps"]] == [
        ("hi", 0, {"sent": 1}), ("w", 1, {}), ("bye", 0, {})]

    status, body = api("get", f"/journeys/members/{someone.pk}/history")
    assert status == 200
    [trip] = body
    assert (trip["journey"], trip["state"], trip["step"]) == ("welcome", "active", "w")
    assert [(s["step"], s["label"], s["outcome"], s["message_status"]) for s in trip["steps"]] == [
        ("hi", "欢迎", "sent", "queued")]
    assert trip["steps"][0]["at"].endswith("+08:00")


def test_an_invalid_definition_names_the_field(api):
    status, body = api("post", "/journeys", {"code": "bad", "name": "坏", "definition": {
        "trigger": {"kind": "manual"}, "steps": [{"key": "w", "kind": "wait", "mode": "duration"}]}})
    assert status == 400
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_definition", "steps[0].days")
    assert not Journey.objects.exists()


def test_a_loop_is_refused(api):
    status, body = api("post", "/journeys", {"code": "loop", "name": "环", "definition": {
        "trigger": {"kind": "manual"}, "steps": [{"key": "a", "kind": "wait", "mode": "duration", "days": 1},
                                                 {"key": "b", "kind": "wait", "mode": "duration", "days": 1,
                                                  "next": "a"}]}})
    assert status == 400 and body["error"]["field"] == "steps"


def test_editing_a_live_journey_answers_the_new_version_and_stop_is_final(api):
    hello = template("hello")
    api("post", "/journeys", {"code": "welcome", "name": "欢迎旅程", "definition": definition(hello.pk)})
    api("post", "/journeys/welcome/activate")
    edited = definition(hello.pk)
    edited["steps"][1]["days"] = 2
    status, body = api("put", "/journeys/welcome", {"definition": edited})
    assert (status, body["version"], body["definition"]["steps"][1]["days"]) == (200, 2, 2)
    assert api("post", "/journeys/welcome/stop")[1]["status"] == "stopped"
    status, body = api("post", "/journeys/welcome/activate")
    assert (status, body["error"]["code"]) == (409, "invalid_transition")


def test_reading_needs_a_token_and_writing_needs_the_write_scope(db):
    assert Client().get("/api/v1/journeys").status_code == 401
    reader = Client(HTTP_AUTHORIZATION=f"Bearer {make_token('bi', 'journeys:read')}")
    assert reader.get("/api/v1/journeys").status_code == 200
    denied = reader.post("/api/v1/journeys", {}, content_type="application/json")
    assert denied.status_code == 403
    assert reader.get("/api/v1/journeys/nope").status_code == 404
