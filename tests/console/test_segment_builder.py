"""The segment builder page: live count over htmx, node-precise errors, saving, data scope."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from siyu.segments.models import Segment
from siyu.segments.rules import ATTRS, MEASURES, MODELS
from siyu.segments.vocabulary import builder_vocabulary
from tests.console.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SHANGHAI_STORE = {"all": [{"attr": "store", "op": "eq", "value": "sh-01"}]}
BOUGHT = {"all": [{"orders": {"window": {"last_days": 100000}}, "measure": "count", "op": "gte", "value": 1}]}


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # assertions read the English texts
    assert client.login(username=user.username, password=PASSWORD)
    return client


def preview(client: Client, rule) -> str:
    text = rule if isinstance(rule, str) else json.dumps(rule)
    response = client.post("/console/segment-builder/preview/", {"rule": text}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_the_builder_offers_every_condition_the_parser_accepts():
    vocabulary = builder_vocabulary()

    assert set(vocabulary["attrs"]) == set(ATTRS)
    assert set(vocabulary["measures"]) == set(MEASURES)
    assert set(vocabulary["models"]) == set(MODELS)


def test_the_live_count_answers_the_members_of_the_rule(shop, superuser):
    client = login(superuser)

    assert 'data-count="3"' in preview(client, SHANGHAI_STORE)
    assert 'data-count="5"' in preview(client, BOUGHT)


def test_the_sample_masks_phone_numbers(shop, superuser):
    html = preview(login(superuser), SHANGHAI_STORE)

    assert "138****8000" in html
    assert "13800138000" not in html


def test_an_invalid_rule_names_the_node(shop, superuser):
    rule = {"all": [{"attr": "city", "op": "eq", "value": "上海"},
                    {"orders": {"window": {"last_days": 0}}, "measure": "count", "op": "gte", "value": 1}]}

    html = preview(login(superuser), rule)

    assert 'data-field="all[1].orders.window.last_days"' in html
    assert "must be at least 1" in html


def test_text_that_is_not_json_is_an_error_not_a_crash(shop, superuser):
    html = preview(login(superuser), "{not json")

    assert 'id="preview-error"' in html


def test_saving_creates_the_segment_with_its_count(shop, superuser):
    client = login(superuser)

    response = client.post("/console/segment-builder/", {
        "code": "sh-store", "name": "上海店会员", "description": "", "rule": json.dumps(SHANGHAI_STORE)})

    assert response.status_code == 302
    assert response["Location"] == "/console/segment-builder/edit/sh-store/"
    segment = Segment.objects.get(code="sh-store")
    assert segment.rule == SHANGHAI_STORE and segment.size == 3 and segment.created_by == superuser


def test_saving_an_invalid_rule_keeps_the_form_and_saves_nothing(shop, superuser):
    bad = {"all": [{"attr": "shoe_size", "op": "eq", "value": "42"}]}

    response = login(superuser).post("/console/segment-builder/", {
        "code": "bad", "name": "bad", "rule": json.dumps(bad)})

    assert response.status_code == 200
    assert "all[0].attr" in response.content.decode()
    assert not Segment.objects.filter(code="bad").exists()


def test_editing_keeps_the_code_and_updates_the_rule(shop, superuser):
    client = login(superuser)
    client.post("/console/segment-builder/", {"code": "s", "name": "s", "rule": json.dumps(SHANGHAI_STORE)})

    page = client.get("/console/segment-builder/edit/s/")
    response = client.post("/console/segment-builder/edit/s/", {
        "code": "renamed", "name": "buyers", "rule": json.dumps(BOUGHT)})

    assert page.status_code == 200 and "sh-01" in page.content.decode()
    assert response.status_code == 302
    segment = Segment.objects.get(code="s")
    assert segment.name == "buyers" and segment.size == 5
    assert not Segment.objects.filter(code="renamed").exists()


def test_a_store_manager_counts_only_their_store(shop, store_manager):
    store_manager.user_permissions.add(Permission.objects.get(codename="view_segment"))

    html = preview(login(store_manager), BOUGHT)

    assert 'data-count="3"' in html


def test_viewing_without_the_add_permission_cannot_save(shop, store_manager):
    store_manager.user_permissions.add(Permission.objects.get(codename="view_segment"))
    client = login(store_manager)

    page = client.get("/console/segment-builder/")
    response = client.post("/console/segment-builder/", {"code": "x", "name": "x", "rule": json.dumps(BOUGHT)})

    assert page.status_code == 200 and "Save segment" not in page.content.decode()
    assert response.status_code == 403
    assert not Segment.objects.exists()


def test_the_page_needs_the_view_permission(shop, store_manager):
    client = login(store_manager)

    assert client.get("/console/segment-builder/").status_code == 403
    assert client.post("/console/segment-builder/preview/", {"rule": json.dumps(BOUGHT)}).status_code == 403
