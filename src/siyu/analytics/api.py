"""Analytics API: every metric with its definition and the filters applied, RFM and lifecycle
distributions per brand, and an on-demand recompute."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from siyu.analytics.metrics.catalog import METRICS, Options, compute
from siyu.analytics.metrics.definitions import definition
from siyu.analytics.metrics.filters import MAX_PERIOD_DAYS, resolve_filters
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


MetricName = Literal[tuple(METRICS)]  # type: ignore[valid-type]


class MetricQuery(Schema):
    start: dt.date | None = Field(None, description="First business day (Asia/Shanghai) of the period, included; "
                                                    "default 29 days before `end`")
    end: dt.date | None = Field(None, description=f"Last business day of the period, included; default today. "
                                                  f"At most {MAX_PERIOD_DAYS} days in all")
    brand: str | None = Field(None, description="Brand code")
    region: str | None = Field(None, description="Region code")
    store: str | None = Field(None, description="Store code")
    channel: str | None = Field(None, description="Sales channel code")
    segment: str | None = Field(None, description="Segment code: only its members")
    within_days: int = Field(30, ge=1, le=365, description="new_members: the first-order conversion window "
                                                           "(days); slow_movers: days without a sale")
    basis: Literal["joined", "first_order"] = Field(
        "joined", description="cohorts: group by joining or first-order month")
    by: Literal["store", "guide"] = Field("store", description="league: per owning store or guide")
    steps: str = Field("join,order", description="funnel: ordered steps, comma-separated: join, order, "
                                                    "event:<kind> (e.g. join,event:store_visit,order); the "
                                                    "window is within_days")
    limit: int = Field(20, ge=1, le=500, description="top_products, co_purchase, product_repurchase, slow_movers, "
                                                         "league: rows")


class MetricDefinitionOut(Schema):
    metric: str
    title: str
    definition: str
    conventions: str


class MetricOut(MetricDefinitionOut):
    filters: dict[str, Any] = Field(description="The period (half-open business days) and narrowing applied")
    value: Any = Field(description="The figures; money and rates are decimal strings, rates as fractions "
                                   "(0.1234 = 12.34 %), null where the denominator is 0")


@router.get("/analytics/metrics", auth=require("analytics:read"),
            response={200: list[MetricDefinitionOut], **AUTH_ERRORS},
            summary="Every metric and how it is defined")
def list_metrics(request: HttpRequest):
    """The metrics `GET /analytics/metrics/{metric}` serves, with their definitions (scope `analytics:read`)."""
    return [definition(name) for name in METRICS]


@router.get("/analytics/metrics/{metric}", auth=require("analytics:read"),
            response={200: MetricOut, 400: ErrorOut, 404: ErrorOut, 422: ErrorOut, **AUTH_ERRORS},
            summary="One metric for a period, brand, region, store, channel or segment")
def get_metric(request: HttpRequest, metric: MetricName, filters: Query[MetricQuery]):
    """One metric as JSON with its definition and the filters applied (scope `analytics:read`).

    Periods are whole business days in the configured zone (Asia/Shanghai), `start` and `end`
    both included. Unknown codes answer 404 naming the field; an inverted or too long period 400.
    """
    narrowed = resolve_filters(start=filters.start, end=filters.end, brand=filters.brand, region=filters.region,
                               store=filters.store, channel=filters.channel, segment=filters.segment)
    options = Options(within_days=filters.within_days, basis=filters.basis, by=filters.by, limit=filters.limit,
                      steps=filters.steps)
    return compute(metric, narrowed, options)
