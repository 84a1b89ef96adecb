"""The member's loyalty page in the console: what it shows, the adjustment, who may do what."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from siyu.core.models import AuditEntry
from siyu.loyalty.models import PointsEntry
from siyu.org.models import Role
from tests.factories import make_member, make_staff, make_store, make_tier
from tests.loyalty.conftest import balance, buy

pytestmark = pytest.mark.django_db
PASSWORD = "pw-123456"


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.login(username=user.username, password=PASSWORD)
    return client


def operator(*codenames: str, role: str = Role.HQ_OPERATOR, store=None):
    """A console user with a staff record (its data scope) and the given loyalty permissions."""
    user = make_staff("ops", role=role, store=store, username="ops").user
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="loyalty", codename__in=codenames))
    return user


def test_the_page_shows_balance_tier_ledger_and_expiring_points(program, member, superuser):
    make_tier(program, "gold", 1, min_paid_amount=100)
    buy(member, "388.00")

    html = login(superuser).get(f"/console/loyalty/members/{member.pk}/").content.decode()

    assert 'data-balance="388"' in html
    assert 'data-tier="gold"' in html
    assert html.count("388") >= 3  # balance, ledger entry, lot remaining


def test_the_member_page_links_to_it(program, member, superuser):
    html = login(superuser).get(f"/console/members/member/{member.pk}/change/").content.decode()

    assert f"/console/loyalty/members/{member.pk}/" in html


def test_an_adjustment_is_written_once_even_when_submitted_twice(program, member, superuser):
    client = login(superuser)
    form = {"program": program.pk, "amount": 200, "reason": "客诉补偿", "key": "form-1"}

    first = client.post(f"/console/loyalty/members/{member.pk}/", form)
    again = client.post(f"/console/loyalty/members/{member.pk}/", form)

    assert first.status_code == again.status_code == 302
    assert balance(member, program) == (200, 0)
    assert AuditEntry.objects.get(action="loyalty.adjust_points").actor == "console:boss"


def test_a_debit_beyond_the_balance_shows_the_error_and_changes_nothing(program, member, superuser):
    buy(member, "10.00")

    response = login(superuser).post(f"/console/loyalty/members/{member.pk}/", {
        "program": program.pk, "amount": -50, "reason": "纠错", "key": "form-2"})

    assert response.status_code == 200
    assert "insufficient" in response.content.decode().lower() or "not enough" in response.content.decode().lower()
    assert balance(member, program) == (10, 0)


def test_viewing_needs_the_view_permission_and_adjusting_the_change_permission(program, member):
    viewer = operator("view_pointsaccount")
    client = login(viewer)

    page = client.get(f"/console/loyalty/members/{member.pk}/")
    post = client.post(f"/console/loyalty/members/{member.pk}/", {
        "program": program.pk, "amount": 5, "reason": "x", "key": "k"})

    assert page.status_code == 200 and 'id="adjust-form"' not in page.content.decode()
    assert post.status_code == 403
    assert not PointsEntry.objects.exists()
    viewer.user_permissions.clear()
    assert login(viewer).get(f"/console/loyalty/members/{member.pk}/").status_code == 403


def test_a_store_manager_cannot_open_another_stores_member(program, member):
    elsewhere = make_member(name="李雷", store=make_store("bj-01"))
    client = login(operator("view_pointsaccount", role=Role.STORE_MANAGER, store=member.store))

    assert client.get(f"/console/loyalty/members/{member.pk}/").status_code == 200
    assert client.get(f"/console/loyalty/members/{elsewhere.pk}/").status_code == 404


def test_the_page_lists_the_members_coupons(program, member, superuser):
    from siyu.loyalty.coupon_models import Validity
    from siyu.loyalty.coupons import issue_coupon
    from tests.loyalty.coupon_fixtures import make_template

    issue_coupon(template=make_template(program=program, validity=Validity.DAYS, valid_days=30), member=member,
                 idempotency_key="welcome")

    html = login(superuser).get(f"/console/loyalty/members/{member.pk}/").content.decode()

    assert 'data-coupon-state="issued"' in html and "券 ten-off" in html


def test_the_sidebar_has_a_loyalty_section(superuser):
    html = login(superuser).get("/console/").content.decode()

    assert "Loyalty programs" in html and "/console/loyalty/reward/" in html
