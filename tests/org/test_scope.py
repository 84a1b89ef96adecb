"""Roles inherit; every staff member's data scope narrows the members they see."""

import pytest

from siyu.members.models import Member
from siyu.org.models import Role, Scope
from siyu.org.selectors import member_scope_q
from tests.factories import make_member, make_region, make_staff, make_store

pytestmark = pytest.mark.django_db


def test_a_role_includes_every_role_below_it():
    region_manager = make_staff(role=Role.REGION_MANAGER)

    assert region_manager.has_role(Role.STORE_MANAGER)
    assert region_manager.has_role(Role.GUIDE)
    assert not region_manager.has_role(Role.HQ_OPERATOR)


@pytest.fixture
def chain():
    east, north = make_region("east"), make_region("north")
    sh, hz, bj = make_store("sh", region=east), make_store("hz", region=east), make_store("bj", region=north)
    guide = make_staff("guide-sh", store=sh)
    members = {
        "sh-own": make_member(store=sh, guide=guide),
        "sh-other": make_member(store=sh),
        "hz": make_member(store=hz),
        "bj": make_member(store=bj),
    }
    return {"east": east, "sh": sh, "guide": guide, "members": members}


def _visible(staff, members):
    ids = set(Member.objects.filter(member_scope_q(staff)).values_list("pk", flat=True))
    return sorted(name for name, m in members.items() if m.pk in ids)


def test_each_role_sees_its_default_scope(chain):
    members = chain["members"]
    hq = make_staff(role=Role.HQ_OPERATOR)
    region = make_staff(role=Role.REGION_MANAGER, region=chain["east"])
    store = make_staff(role=Role.STORE_MANAGER, store=chain["sh"])

    assert _visible(hq, members) == ["bj", "hz", "sh-other", "sh-own"]
    assert _visible(region, members) == ["hz", "sh-other", "sh-own"]
    assert _visible(store, members) == ["sh-other", "sh-own"]
    assert _visible(chain["guide"], members) == ["sh-own"]
    assert _visible(None, members) == []


def test_an_explicit_scope_overrides_the_role_default(chain):
    guide_with_store_scope = make_staff(role=Role.GUIDE, store=chain["sh"])
    guide_with_store_scope.scope = Scope.STORE

    assert _visible(guide_with_store_scope, chain["members"]) == ["sh-other", "sh-own"]
