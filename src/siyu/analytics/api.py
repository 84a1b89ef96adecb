"""Analytics API: RFM and lifecycle distributions per brand, and an on-demand recompute."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from siyu.analytics.selectors import distribution
from siyu.analytics.services import recompute_models
from siyu.core.api_auth import AUTH_ERRORS, MAX_BATCH_ROWS, ErrorOut, Moment, require
from siyu.core.db import by_code
from siyu.core.errors import BatchTooLarge, NotFound
from siyu.org.models import Brand

router = Router(tags=["analytics"])


class DistributionQuery(Schema):
    brand: str | None = Field(None, description="Brand code; omit for every brand")


class BrandDistributionOut(Schema):
    brand: str = Field(description="Brand code")
    name: str
    rfm: dict[str, int] = Field(description="Members per RFM class (all eight, zeros included)")
    lifecycle: dict[str, int] = Field(description="Members per lifecycle stage (all five, zeros included)")


class DistributionOut(Schema):
    brands: list[BrandDistributionOut]


class RecomputeIn(Schema):
    member_ids: list[int] | None = Field(
        None, description=f"Recompute just these members (at most {MAX_BATCH_ROWS:,}); omit for everyone")


class RecomputeOut(Schema):
    rfm: int = Field(description="Member–brand RFM rows written")
    lifecycle: int = Field(description="Member–brand lifecycle rows written")
    rfm_changes: int = Field(description="RFM class changes recorded")
    lifecycle_changes: int = Field(description="Lifecycle stage changes recorded")
    computed_at: Moment


@router.get("/analytics/distribution", auth=require("analytics:read"),
            response={200: DistributionOut, 404: ErrorOut, **AUTH_ERRORS},
            summary="RFM classes and lifecycle stages per brand")
def get_distribution(request: HttpRequest, filters: Query[DistributionQuery]):
    """How many members each brand has per RFM class and per lifecycle stage (scope `analytics:read`).

    The counts are as of the last recompute (nightly, or `POST /analytics/recompute`).
    """
    brand_id = None
    if filters.brand:
        brand = by_code(Brand, [filters.brand]).get(filters.brand)
        if brand is None:
            raise NotFound(_("no brand with code %(code)s") % {"code": filters.brand}, field="brand")
        brand_id = brand.pk
    counts = distribution(brand_id=brand_id)
    return {"brands": [{"brand": row["code"], "name": row["name"], "rfm": row["rfm"], "lifecycle": row["lifecycle"]}
                       for row in counts.values()]}


@router.post("/analytics/recompute", auth=require("analytics:write"),
             response={200: RecomputeOut, 400: ErrorOut, 413: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
             summary="Recompute RFM and lifecycle stages now")
def recompute(request: HttpRequest, payload: RecomputeIn):
    """Recompute RFM and lifecycle stages with every brand, synchronously (scope `analytics:write`).

    Body `{"member_ids": [...]}`: just those members, scored against the whole brand; body `{}`:
    everyone, as the nightly task does (on a large dataset this takes a while). Safe to repeat.
    """
    member_ids = payload.member_ids
    if member_ids is not None and len(member_ids) > MAX_BATCH_ROWS:
        raise BatchTooLarge(
            _("recompute at most %(max)s members per request, this one lists %(n)s; omit member_ids for everyone")
            % {"max": f"{MAX_BATCH_ROWS:,}", "n": f"{len(member_ids):,}"}, field="member_ids")
    now = timezone.now()
    result = recompute_models(member_ids=member_ids, now=now)
    return {**result.as_dict(), "computed_at": now}
