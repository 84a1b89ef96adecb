"""Reads of the modelled member values: distributions, and assignments for model tags."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from siyu.analytics.models import LifecycleStage, MemberLifecycle, MemberRfm, RfmClass
from siyu.core.db import chunked
from siyu.org.models import Brand


def distribution(*, brand_id: int | None = None) -> dict[int, dict]:
    """Members per RFM class and per lifecycle stage, for one brand or every brand.

    ``{brand_id: {"code", "name", "rfm": {class: n}, "lifecycle": {stage: n}}}`` in brand code
    order; every class and stage is present, zeros included. Three queries.
    """
    brands = Brand.objects.order_by("code")
    if brand_id is not None:
        brands = brands.filter(pk=brand_id)
    result = {
        pk: {"code": code, "name": name, "rfm": dict.fromkeys(RfmClass.values, 0),
             "lifecycle": dict.fromkeys(LifecycleStage.values, 0)}
        for pk, code, name in brands.values_list("pk", "code", "name")
    }
    if not result:
        return result
    narrowed = {"brand_id": brand_id} if brand_id is not None else {}
    rfm = (MemberRfm.objects.filter(**narrowed).values_list("brand_id", "rfm_class")
           .annotate(n=Count("id")).order_by())
    for brand, rfm_class, n in rfm:
        if brand in result and rfm_class in result[brand]["rfm"]:
            result[brand]["rfm"][rfm_class] = n
    stages = (MemberLifecycle.objects.filter(**narrowed).values_list("brand_id", "stage")
              .annotate(n=Count("id")).order_by())
    for brand, stage, n in stages:
        if brand in result and stage in result[brand]["lifecycle"]:
            result[brand]["lifecycle"][stage] = n
    return result


def rfm_assignments(brand_id: int, member_ids: Iterable[int] | None = None) -> dict[int, str]:
    """``{member_id: rfm_class}`` with the brand (for model tags): the given members that have a
    class, or everyone with one. A member without a row has no class: leave it out of tagging."""
    return _assignments(MemberRfm, "rfm_class", brand_id, member_ids)


def lifecycle_assignments(brand_id: int, member_ids: Iterable[int] | None = None) -> dict[int, str]:
    """``{member_id: stage}`` with the brand (for model tags), like :func:`rfm_assignments`."""
    return _assignments(MemberLifecycle, "stage", brand_id, member_ids)


def _assignments(model, column: str, brand_id: int, member_ids: Iterable[int] | None) -> dict[int, str]:
    rows = model.objects.filter(brand_id=brand_id).order_by()
    if member_ids is None:
        return dict(rows.values_list("member_id", column).iterator(chunk_size=5000))
    found: dict[int, str] = {}
    for chunk in chunked(sorted({m for m in member_ids if m is not None}), 1000):
        found.update(rows.filter(member_id__in=chunk).values_list("member_id", column))
    return found
