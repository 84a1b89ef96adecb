"""Brand, store and guide conditions: a member without one differs from every code."""

import pytest

from siyu.members.models import Member
from siyu.segments.compiler import compile_rule
from siyu.segments.rules import parse_rule
from tests.factories import make_brand, make_member, make_staff, make_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def members():
    brand = make_brand("brand-a")
    store = make_store("s1", brand=brand)
    return {"g1": make_member(code="M1", store=store, guide=make_staff("g1")),
            "g2": make_member(code="M2", store=store, guide=make_staff("g2")),
            "none": make_member(code="M3")}


def _selected(members, rule) -> list:
    pks = set(Member.objects.filter(compile_rule(parse_rule(rule))).values_list("pk", flat=True))
    return sorted(guide for guide, member in members.items() if member.pk in pks)


NOT_G2 = [{"attr": "guide", "op": "not_in", "value": ["g2"]}, {"attr": "guide", "op": "ne", "value": "g2"}]


@pytest.mark.parametrize("not_g2", NOT_G2)
def test_a_member_without_a_guide_is_not_in_a_list_of_guides(members, not_g2):
    assert _selected(members, not_g2) == ["g1", "none"]


@pytest.mark.parametrize("not_g2", NOT_G2)
@pytest.mark.parametrize(("other", "expected"), [
    ({"attr": "guide", "op": "empty", "value": False}, ["g1", "g2", "none"]),
    ({"attr": "guide", "op": "eq", "value": "g2"}, ["g1", "g2", "none"]),
    ({"attr": "guide", "op": "empty", "value": True}, ["g1", "none"]),
])
def test_a_member_without_a_guide_stays_when_another_guide_condition_shares_the_any(members, not_g2, other, expected):
    assert _selected(members, {"any": [other, not_g2]}) == expected


def test_a_member_without_a_store_has_no_brand_either(members):
    rule = {"any": [{"attr": "store", "op": "empty", "value": False},
                    {"attr": "brand", "op": "ne", "value": "brand-a"}]}
    assert _selected(members, rule) == ["g1", "g2", "none"]


def test_a_member_without_a_guide_or_store_is_kept_by_a_not_over_their_codes(members):
    rule = {"not": {"all": [{"attr": "guide", "op": "in", "value": ["g1"]},
                            {"not": {"attr": "store", "op": "eq", "value": "s3"}}]}}
    assert _selected(members, rule) == ["g2", "none"]
