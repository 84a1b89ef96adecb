"""Recompute the modelled member values, RFM (RFM 模型) and lifecycle stage (生命周期), per brand.

Both read the counted orders (``is_counted``) placed in the brand's stores up to ``now`` and write
their result set-based: a temporary scratch table receives the new values from one aggregate
query, and four statements turn the difference into history (:class:`ModelChange`), deletions
and an upsert.

- **Everyone** (``member_ids=None``): one aggregate pass over each brand's orders.
- **Touched members** (``member_ids`` given, e.g. after an ingestion batch): lifecycle stages and
  threshold RFM read just those members' orders (the ``(member, ordered_at)`` index), 1,000
  members at a time. Quintile RFM ranks a member among all the brand's buyers, so it still takes
  one aggregate pass over the brand, and writes only the touched members' rows.

For the same data and ``now`` both paths write exactly the same rows for a member, whatever ran
before. Re-running with the same data and ``now`` changes nothing and writes no history.
Each brand is recomputed in its own transaction (called inside a transaction, the work joins
it) holding a lock on the brand's row: shared for touched members, so that concurrent ingestion
batches do not wait for each other, exclusive for everyone, so that a full pass neither runs
beside another recompute of the brand nor overwrites a batch's fresher values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.analytics import scoring
from siyu.analytics import sql as q
from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange, RfmMethod, RfmSettings
from siyu.commerce.models import Order
from siyu.core.db import chunked
from siyu.core.errors import ValidationError
from siyu.org.models import Brand, Store

CHUNK = 1000
RFM_SCRATCH = "analytics_rfm_scratch"
LIFECYCLE_SCRATCH = "analytics_lifecycle_scratch"

#: ``progress(kind, brands_done, brands_total)`` before the first brand and after each; kind is
#: "rfm" or "lifecycle".
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelsResult:
    """What one recompute wrote: member–brand rows computed and class/stage changes recorded."""

    rfm: int = 0
    lifecycle: int = 0
    rfm_changes: int = 0
    lifecycle_changes: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def recompute_rfm(*, brand_ids: Iterable[int] | None = None, member_ids: Iterable[int | None] | None = None,
                  now: dt.datetime | None = None) -> int:
    """Score RFM for every buyer of each brand (default: all brands), or for ``member_ids`` only.

    The window is the brand's ``window_days`` before ``now`` (default ``timezone.now()``); a
    brand without :class:`RfmSettings` uses the defaults (quintiles, 365 days). Recency is whole
    days since the last order, frequency the number of orders, monetary the amount paid net of
    refunds. Scores run 1–5, 5 best:

    - quantiles: ``NTILE(5)`` over the brand's buyers in the window, ordered by the value and then
      by member id (recency: most days first), so ties split deterministically. With
      ``member_ids`` the quintiles are still those of the whole brand, so a touched member scores
      exactly as in a full pass.
    - thresholds: the four cut points per dimension; recency ``≤ cut[0]`` → 5 … ``> cut[3]`` → 1,
      frequency and monetary ``< cut[0]`` → 1 … ``≥ cut[3]`` → 5.

    The class follows R, F, M each high (score ≥ 3) or low. A member without a counted order in
    the window has no row for the brand (a stale row is deleted). Every new, changed and removed
    class is recorded as a :class:`ModelChange` (``''`` stands for none). Idempotent for the same
    data and ``now``. Raises ``ValidationError`` (``invalid_rfm_settings``) for a brand whose
    threshold settings are unusable. Returns the number of member–brand rows written.
    """
    return _recompute("rfm", brand_ids=brand_ids, member_ids=member_ids, now=now)[0]


def recompute_lifecycle(*, brand_ids: Iterable[int] | None = None, member_ids: Iterable[int | None] | None = None,
                        now: dt.datetime | None = None) -> int:
    """Stage every buyer of each brand (default: all brands) in the lifecycle, or ``member_ids`` only.

    Over the member's counted orders at the brand up to ``now``, with ``d`` the whole days since
    the last order and ``f`` since the first, the first rule that holds wins:

    1. **new** — ``f ≤ new_days``;
    2. **churned** — ``d > churned_days``;
    3. **silent** — ``d > silent_days`` (so ``silent_days < d ≤ churned_days``);
    4. **recalled** — the gap in whole days between the last order and the latest order before
       it exceeds ``churned_days`` (the member had churned and bought again; ``d ≤ silent_days``);
    5. **active** — otherwise.

    A member whose stage stays keeps the row untouched, ``since`` and ``computed_at`` included
    (``computed_at`` is when the stage was last written). On a change, ``since`` is the moment
    the data says the member entered the stage: the first order (new), the last order (recalled),
    the last order plus ``silent_days + 1`` / ``churned_days + 1`` days (silent / churned); for
    active, the end of the new period (first order plus ``new_days + 1`` days), or the last order
    if that is later and the member left silent, churned or recalled by buying.

    A member with no counted order at the brand has no row (a stale row is deleted). Every new,
    changed and removed stage is recorded as a :class:`ModelChange`. Idempotent for the same data
    and ``now``. Returns the number of member–brand pairs staged (rows that exist afterwards).
    """
    return _recompute("lifecycle", brand_ids=brand_ids, member_ids=member_ids, now=now)[0]


def recompute_models(*, member_ids: Iterable[int | None] | None = None, now: dt.datetime | None = None,
                     progress: Progress | None = None) -> ModelsResult:
    """RFM and lifecycle for all brands: everyone (nightly), or the members a batch touched.

    Same contract as :func:`recompute_rfm` and :func:`recompute_lifecycle`, with one ``now`` for
    both. Returns the rows written and the changes recorded per model.
    """
    now = now or timezone.now()
    ids = None if member_ids is None else list(member_ids)
    rfm = _recompute("rfm", brand_ids=None, member_ids=ids, now=now, progress=progress)
    lifecycle = _recompute("lifecycle", brand_ids=None, member_ids=ids, now=now, progress=progress)
    return ModelsResult(rfm=rfm[0], lifecycle=lifecycle[0], rfm_changes=rfm[1], lifecycle_changes=lifecycle[1])


# --- the passes -------------------------------------------------------------------------------

def _recompute(kind: str, *, brand_ids, member_ids, now, progress: Progress | None = None) -> tuple[int, int]:
    now = now or timezone.now()
    if member_ids is not None:
        member_ids = sorted({int(m) for m in member_ids if m is not None})
        if not member_ids:
            return 0, 0
    brands = Brand.objects.order_by("pk")
    if brand_ids is not None:
        brands = brands.filter(pk__in=list(brand_ids))
    brands = list(brands.values_list("pk", flat=True))
    settings = {s.brand_id: s for s in RfmSettings.objects.filter(brand_id__in=brands)}
    stores: dict[int, list[int]] = {b: [] for b in brands}
    for store_id, brand_id in Store.objects.filter(brand_id__in=brands).order_by("pk").values_list("pk", "brand_id"):
        stores[brand_id].append(store_id)
    run = _rfm_brand if kind == "rfm" else _lifecycle_brand
    rows = changes = 0
    if progress:
        progress(kind, 0, len(brands))
    for done, brand_id in enumerate(brands, start=1):
        brand_settings = _checked(settings.get(brand_id) or RfmSettings(brand_id=brand_id))
        with transaction.atomic():
            q.lock_brand(brand_id, exclusive=member_ids is None)
            q.tune_for_aggregates()
            brand_rows, brand_changes = run(brand_settings, stores[brand_id], member_ids, now)
        rows += brand_rows
        changes += brand_changes
        if progress:
            progress(kind, done, len(brands))
    return rows, changes


def _checked(settings: RfmSettings) -> RfmSettings:
    try:
        settings.clean()
    except DjangoValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise ValidationError(
            _("the RFM settings of brand %(brand)s are unusable: %(field)s: %(message)s")
            % {"brand": settings.brand_id, "field": field, "message": messages[0]},
            code="invalid_rfm_settings", field=field) from exc
    return settings


def _chunks(member_ids: list[int] | None) -> list[list[int] | None]:
    """``[None]`` (one pass over everyone), or the id chunks."""
    return [None] if member_ids is None else list(chunked(member_ids, CHUNK))


def _rfm_brand(settings: RfmSettings, stores: list[int], member_ids: list[int] | None,
               now: dt.datetime) -> tuple[int, int]:
    # A quintile ranks a member among all the brand's buyers: touched members are scored within
    # the whole brand (one aggregate pass) and only their rows are written. Fixed thresholds
    # score each member alone, so a chunk reads just its members' orders.
    whole_brand = member_ids is None or settings.method == RfmMethod.QUANTILES
    if member_ids is not None and whole_brand and not _rfm_touched(settings, stores, member_ids, now):
        return 0, 0  # none of them bought in the window or has a row: nothing to write
    if whole_brand:
        q.create_scratch(RFM_SCRATCH, *scoring.rfm_select(settings, stores, None, now))
    rows = changes = 0
    for chunk in _chunks(member_ids):
        if not whole_brand:
            q.create_scratch(RFM_SCRATCH, *scoring.rfm_select(settings, stores, chunk, now))
        rows += q.count_scratch(RFM_SCRATCH, scoring.in_chunk("t", chunk))
        changes += _record_and_prune(MemberRfm, "rfm_class", ModelChange.Kind.RFM, RFM_SCRATCH,
                                     scoring.rfm_class_sql("t"), settings.brand_id, chunk, now)
        _upsert(scoring.rfm_upsert_select(RFM_SCRATCH, settings.brand_id, chunk), now)
    q.drop_scratch(RFM_SCRATCH)
    return rows, changes


def _rfm_touched(settings: RfmSettings, stores: list[int], member_ids: list[int], now: dt.datetime) -> bool:
    start = now - dt.timedelta(days=settings.window_days)
    for chunk in _chunks(member_ids):
        if (MemberRfm.objects.filter(brand_id=settings.brand_id, member_id__in=chunk).exists()
                or Order.objects.filter(member_id__in=chunk, store_id__in=stores, is_counted=True,
                                        ordered_at__gte=start, ordered_at__lte=now).exists()):
            return True
    return False


def _lifecycle_brand(settings: RfmSettings, stores: list[int], member_ids: list[int] | None,
                     now: dt.datetime) -> tuple[int, int]:
    rows = changes = 0
    for chunk in _chunks(member_ids):
        rows += q.create_scratch(LIFECYCLE_SCRATCH, *scoring.lifecycle_select(settings, stores, chunk, now))
        changes += _record_and_prune(MemberLifecycle, "stage", ModelChange.Kind.LIFECYCLE, LIFECYCLE_SCRATCH,
                                     scoring.stage_name_sql("t"), settings.brand_id, chunk, now)
        _upsert(scoring.lifecycle_upsert_select(LIFECYCLE_SCRATCH, settings, chunk), now)
    q.drop_scratch(LIFECYCLE_SCRATCH)
    return rows, changes


def _record_and_prune(model, column: str, kind: str, scratch: str, new_value: str, brand_id: int,
                      chunk: list[int] | None, now: dt.datetime) -> int:
    """Before the upsert: record a change for every staged member (of the chunk, if given) whose
    value is new or differs from ``model``'s row, and for every row (of the brand, or of the
    chunk's members) whose member is not staged any more; then delete those rows. Returns the
    changes recorded."""
    qn = connection.ops.quote_name
    table, history, scratch = qn(model._meta.db_table), qn(ModelChange._meta.db_table), qn(scratch)
    brand_id = int(brand_id)

    def in_scope(alias: str) -> str:
        return (f"{alias}.brand_id = {brand_id} AND {scoring.in_chunk(alias, chunk)} AND NOT EXISTS "  # noqa: S608
                f"(SELECT 1 FROM {scratch} t WHERE t.member_id = {alias}.member_id)")

    insert = f"INSERT INTO {history} (member_id, brand_id, kind, old_value, new_value, at) "
    at = q.moment(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert}SELECT t.member_id, {brand_id}, %s, COALESCE(r.{column}, ''), {new_value}, %s "  # noqa: S608
            f"FROM {scratch} t LEFT JOIN {table} r ON r.member_id = t.member_id AND r.brand_id = {brand_id} "
            f"WHERE {scoring.in_chunk('t', chunk)} AND (r.{column} IS NULL OR r.{column} <> {new_value}) "
            f"ORDER BY t.member_id", [kind, at])
        changes = cursor.rowcount
        cursor.execute(f"{insert}SELECT r.member_id, {brand_id}, %s, r.{column}, '', %s FROM {table} r "  # noqa: S608
                       f"WHERE {in_scope('r')}", [kind, at])
        changes += cursor.rowcount
        # MySQL cannot alias the table a DELETE removes from: name it in full.
        cursor.execute(f"DELETE FROM {table} WHERE {in_scope(table)}")  # noqa: S608
    return changes


def _upsert(select_sql: str, now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(select_sql, [q.moment(now)])


__all__ = ["ModelsResult", "recompute_lifecycle", "recompute_models", "recompute_rfm"]
