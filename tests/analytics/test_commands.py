"""``siyu models``, the nightly task and the console pages."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone, translation

from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange, RfmSettings
from siyu.analytics.tasks import nightly_models
from tests.analytics.conftest import brand_of, buy
from tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyers(shop):
    members = [make_member() for _ in range(3)]
    for i, member in enumerate(members):
        buy(member, shop, 10 + 100 * i, now=timezone.now())
    return members


def test_the_models_command_recomputes_everyone_and_prints_a_summary(buyers):
    out = StringIO()
    with translation.override("en"):
        call_command("models", stdout=out)

    text = out.getvalue()
    assert "3 RFM rows (3 class changes), 3 lifecycle rows (3 stage changes)" in text
    assert "brand-a" in text
    assert MemberRfm.objects.count() == MemberLifecycle.objects.count() == 3


def test_the_nightly_task_recomputes_everyone(buyers):
    result = nightly_models.call()

    assert result == {"rfm": 3, "lifecycle": 3, "rfm_changes": 3, "lifecycle_changes": 3}
    assert set(MemberLifecycle.objects.values_list("stage", flat=True)) == {"new", "silent", "churned"}


def test_the_console_lists_scores_and_history_but_does_not_let_anyone_edit_them(client, buyers, django_user_model):
    nightly_models.call()
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(boss)
    rfm = MemberRfm.objects.first()

    for page in ("memberrfm", "memberlifecycle", "modelchange", "rfmsettings"):
        assert client.get(f"/console/analytics/{page}/").status_code == 200
    assert client.get(f"/console/analytics/memberrfm/?rfm_class={rfm.rfm_class}").status_code == 200
    assert client.post(f"/console/analytics/memberrfm/{rfm.pk}/change/", {"r_score": 5}).status_code == 403
    assert client.post(f"/console/analytics/modelchange/{ModelChange.objects.first().pk}/delete/",
                       {"post": "yes"}).status_code == 403
    assert MemberRfm.objects.get(pk=rfm.pk).r_score == rfm.r_score


def test_settings_with_cut_points_out_of_order_are_refused_in_the_console(client, shop, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(boss)
    form = {"brand": brand_of(shop).pk, "method": "thresholds", "window_days": 365,
            "recency_days": "[30, 7, 90, 180]", "frequency": "[2, 3, 5, 8]", "monetary": "[100, 300, 800, 2000]",
            "new_days": 30, "silent_days": 90, "churned_days": 180}

    refused = client.post("/console/analytics/rfmsettings/add/", form)
    accepted = client.post("/console/analytics/rfmsettings/add/", {**form, "recency_days": "[7, 30, 90, 180]"})

    assert refused.status_code == 200 and "recency_days" in refused.context["adminform"].form.errors
    assert accepted.status_code == 302
    assert RfmSettings.objects.get().recency_days == [7, 30, 90, 180]
