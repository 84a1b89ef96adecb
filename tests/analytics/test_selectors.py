"""Distributions per brand, and the assignments the model tags are built from."""

from __future__ import annotations

import pytest

from siyu.analytics.models import LifecycleStage, RfmClass
from siyu.analytics.selectors import distribution, lifecycle_assignments, rfm_assignments
from siyu.analytics.services import recompute_models
from tests.analytics.conftest import NOW, brand_of, buy
from tests.factories import make_brand, make_member

pytestmark = pytest.mark.django_db


def test_distribution_counts_every_class_and_stage_per_brand_with_zeros(shop, other_shop):
    make_brand("brand-c")  # no buyers at all
    a1, a2, both = make_member(), make_member(), make_member()
    buy(a1, shop, 3)
    buy(a2, shop, 100)
    buy(both, shop, 200)
    buy(both, other_shop, 5)
    recompute_models(now=NOW)

    counts = distribution()

    a, b = brand_of(shop), brand_of(other_shop)
    assert [row["code"] for row in counts.values()] == ["brand-a", "brand-b", "brand-c"]
    assert set(counts[a.pk]["rfm"]) == set(RfmClass.values)
    assert set(counts[a.pk]["lifecycle"]) == set(LifecycleStage.values)
    assert sum(counts[a.pk]["rfm"].values()) == 3
    assert counts[a.pk]["lifecycle"] == {"new": 1, "active": 0, "silent": 1, "churned": 1, "recalled": 0}
    assert counts[b.pk]["lifecycle"] == {"new": 1, "active": 0, "silent": 0, "churned": 0, "recalled": 0}
    assert counts[b.pk]["rfm"] == {**dict.fromkeys(RfmClass.values, 0), "general_retain": 1}
    assert list(distribution(brand_id=b.pk)) == [b.pk]
    assert distribution(brand_id=b.pk)[b.pk] == counts[b.pk]


def test_assignments_give_each_members_class_and_stage_with_one_brand(shop, other_shop):
    buyer, elsewhere, nobody = make_member(), make_member(), make_member()
    buy(buyer, shop, 3)
    buy(elsewhere, other_shop, 3)
    recompute_models(now=NOW)
    brand = brand_of(shop)

    assert rfm_assignments(brand.pk) == {buyer.pk: "general_retain"}
    assert rfm_assignments(brand.pk, [buyer.pk, elsewhere.pk, nobody.pk]) == {buyer.pk: "general_retain"}
    assert lifecycle_assignments(brand.pk, [elsewhere.pk]) == {}
    assert lifecycle_assignments(brand_of(other_shop).pk) == {elsewhere.pk: "new"}
