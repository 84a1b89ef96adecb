"""Recompute the modelled member values, RFM (RFM 模型) and lifecycle stage (生命周期), per brand.

Both read the counted orders (``is_counted``) placed in the brand's stores up to ``now`` and write
their result set-based: a temporary scratch table receives the new values of both models from
one aggregate query, and four statements per model turn the difference into history
(:class:`ModelChange`), deletions and an upsert of the rows that changed. Then the members' model
tags (:mod:`siyu.analytics.model_tags`) are brought in step with the rows.

- **Everyone** (``member_ids=None``): one aggregate pass over each brand's orders.
- **Touched members** (``member_ids`` given, e.g. after an ingestion batch): lifecycle stages and
  threshold RFM read just those members' orders (the ``(member, ordered_at)`` index), 1,000
  members at a time. Quintile RFM ranks a member among all the brand's buyers, so it still takes
  one aggregate pass over the brand, and writes only the touched members' rows. Lifecycle alone
  (an ingestion batch) skips the scratch table: one read stages the members beside their rows,
  and only the members whose stage moved are written, with their tags
  (:func:`_lifecycle_touched`).

For the same data and ``now`` both paths write exactly the same rows and tags for a member,
whatever ran before. Re-running with the same data and ``now`` changes nothing and writes no
history. Each brand is recomputed in its own transaction (called inside a transaction, the work
joins it) holding a lock on the brand's row: shared for touched members, so that concurrent
ingestion batches do not wait for each other, exclusive for everyone, so that a full pass neither
runs beside another recompute of the brand nor overwrites a batch's fresher values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.analytics import model_tags, scoring
from siyu.analytics import sql as q
from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange, RfmMethod, RfmSettings
from siyu.commerce.models import Order
from siyu.core.db import among, chunked, insert_rows, note_bulk_write, update_rows
from siyu.core.errors import ValidationError
from siyu.org.models import Brand, Store
from siyu.tags.services import TagResult

CHUNK = 1000
SCRATCH = "analytics_models_scratch"

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

    The class follows R, F, M each high (score ≥ 3) or low. The row keeps the last order's time
    (recency is computed on read); a row whose values stay is not rewritten (``computed_at`` is
    when it was last written). A member without a counted order in the window has no row for the
    brand (a stale row is deleted). Every new, changed and removed class is recorded as a
    :class:`ModelChange` (``''`` stands for none), and the member's RFM tag of the brand follows
    the class (none without a row). Idempotent for the same data and ``now``. Raises
    ``ValidationError`` (``invalid_rfm_settings``) for a brand whose threshold settings are
    unusable. Returns the number of member–brand rows scored (rows that exist afterwards).
    """
    return _recompute(("rfm",), brand_ids=brand_ids, member_ids=member_ids, now=now)["rfm"][0]


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
    changed and removed stage is recorded as a :class:`ModelChange`, and the member's lifecycle
    tag of the brand follows the stage. Idempotent for the same data and ``now``. Returns the
    number of member–brand pairs staged (rows that exist afterwards).
    """
    return _recompute(("lifecycle",), brand_ids=brand_ids, member_ids=member_ids, now=now)["lifecycle"][0]


def recompute_models(*, member_ids: Iterable[int | None] | None = None, now: dt.datetime | None = None,
                     progress: Progress | None = None) -> ModelsResult:
    """RFM and lifecycle for all brands: everyone (nightly), or the members a batch touched.

    Same contract as :func:`recompute_rfm` and :func:`recompute_lifecycle`, with one ``now`` for
    both and one aggregate pass per brand feeding both. Returns the rows scored and the changes
    recorded per model.
    """
    counts = _recompute(model_tags.KINDS, brand_ids=None, member_ids=member_ids, now=now, progress=progress)
    rfm, lifecycle = counts["rfm"], counts["lifecycle"]
    return ModelsResult(rfm=rfm[0], lifecycle=lifecycle[0], rfm_changes=rfm[1], lifecycle_changes=lifecycle[1])


def sync_model_tags(*, brand_ids: Iterable[int] | None = None, member_ids: Iterable[int | None] | None = None,
                    kinds: Iterable[str] = model_tags.KINDS, now: dt.datetime | None = None) -> TagResult:
    """Make the model tags of everyone (or of ``member_ids``) follow their current RFM and
    lifecycle rows (``kinds``: ``"rfm"``, ``"lifecycle"``) without recomputing the rows.

    The recomputes already do this for what they write; this is for tags that moved without
    their rows, e.g. a merge gives the survivor the merged member's tags while the merged
    member's rows are dropped. Idempotent; returns the tags added and removed.
    """
    tags = _recompute(tuple(kinds), brand_ids=brand_ids, member_ids=member_ids, now=now, write=False)
    return TagResult(added=sum(t.added for t in tags), removed=sum(t.removed for t in tags))


# --- the passes -------------------------------------------------------------------------------

def _recompute(kinds: tuple[str, ...], *, brand_ids, member_ids, now, progress: Progress | None = None,
               write: bool = True) -> dict | list[TagResult]:
    """Per brand, in one transaction under the brand's lock: the rows of ``kinds`` (with
    ``write``), then their model tags. Returns ``{kind: (rows, changes)}``, or without ``write``
    the tag results."""
    now = now or timezone.now()
    totals = {kind: (0, 0) for kind in kinds}
    tag_results: list[TagResult] = []
    if member_ids is not None:
        member_ids = sorted({int(m) for m in member_ids if m is not None})
        if not member_ids:
            return totals if write else tag_results
    brands = Brand.objects.order_by("pk")
    if brand_ids is not None:
        brands = brands.filter(pk__in=list(brand_ids))
    brands = list(brands.values_list("pk", "code", "name"))
    settings = {s.brand_id: s for s in RfmSettings.objects.filter(brand_id__in=[b[0] for b in brands])}
    stores: dict[int, list[int]] = {b[0]: [] for b in brands}
    for store_id, brand_id in (Store.objects.filter(brand_id__in=list(stores)).order_by("pk")
                               .values_list("pk", "brand_id")):
        stores[brand_id].append(store_id)
    groups = model_tags.model_groups(brands, kinds)
    for kind in kinds if progress else ():
        progress(kind, 0, len(brands))
    for done, (brand_id, _code, _name) in enumerate(brands, start=1):
        brand_settings = _checked(settings.get(brand_id) or RfmSettings(brand_id=brand_id)) if write else None
        with transaction.atomic():
            q.lock_brand(brand_id, exclusive=member_ids is None)
            moved = None
            if write:
                q.tune_for_aggregates(few_members=member_ids is not None)
                counts, moved = _recompute_brand(kinds, brand_settings, stores[brand_id], member_ids, now)
                totals = {k: (totals[k][0] + counts[k][0], totals[k][1] + counts[k][1]) for k in kinds}
            for kind in kinds:
                group = groups[(brand_id, kind)]
                if moved is not None:  # the lifecycle rows just written, one by one; no RFM row was
                    tag_results.append(model_tags.assign(kind, group, moved, now)
                                       if moved and kind == "lifecycle" else TagResult())
                    continue
                tag_results.append(model_tags.sync_brand(kind, brand_id, group, member_ids, now,
                                                         after_recompute=write))
        for kind in kinds if progress else ():
            progress(kind, done, len(brands))
    return totals if write else tag_results


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


def _recompute_brand(kinds: tuple[str, ...], settings: RfmSettings, stores: list[int], member_ids: list[int] | None,
                     now: dt.datetime) -> tuple[dict[str, tuple[int, int]], dict[int, str | None] | None]:
    """``({kind: (rows, changes)}, moved)``: after an ingestion batch's lifecycle pass, ``moved``
    maps the members whose rows it wrote to their new stage (None: the row went); None when the
    pass does not know them one by one."""
    counts = dict.fromkeys(kinds, (0, 0))
    lifecycle = "lifecycle" in kinds
    scores = "rfm" in kinds
    quintiles = settings.method == RfmMethod.QUANTILES
    if scores and member_ids is not None and quintiles:
        # A quintile ranks a member among all the brand's buyers: touched members are scored
        # within the whole brand (one aggregate pass) and only their rows are written.
        scores = _rfm_touched(settings, stores, member_ids, now)  # else nothing to write
    if not (scores or lifecycle):
        return counts, None
    if lifecycle and not scores and member_ids is not None:
        staged, changes, moved = _lifecycle_touched(settings, stores, member_ids, now)
        counts["lifecycle"] = (staged, changes)
        return counts, moved
    # One aggregate pass feeds both models: over the whole brand, or a chunk of members at a time.
    whole_brand = member_ids is None or (scores and quintiles)
    if whole_brand:
        q.create_scratch(SCRATCH, *scoring.models_select(settings, stores, None, now, scores=scores))
    brand_id = settings.brand_id
    for chunk in _chunks(member_ids):
        if not whole_brand:
            q.create_scratch(SCRATCH, *scoring.models_select(settings, stores, chunk, now, scores=scores))
        if scores:
            rows = q.count_scratch(SCRATCH, scoring.count_sql("rfm", chunk))
            changes = _record_and_prune(MemberRfm, "rfm_class", ModelChange.Kind.RFM, scoring.rfm_class_sql("t"),
                                        scoring.RFM_STAGED, brand_id, chunk, now)
            _upsert(MemberRfm, scoring.rfm_upsert_select(SCRATCH, brand_id, chunk), now)
            counts["rfm"] = (counts["rfm"][0] + rows, counts["rfm"][1] + changes)
        if lifecycle:
            rows = q.count_scratch(SCRATCH, scoring.count_sql("lifecycle", chunk))
            changes = _record_and_prune(MemberLifecycle, "stage", ModelChange.Kind.LIFECYCLE,
                                        scoring.stage_name_sql("t"), "1 = 1", brand_id, chunk, now)
            _upsert(MemberLifecycle, scoring.lifecycle_upsert_select(SCRATCH, settings, chunk), now)
            counts["lifecycle"] = (counts["lifecycle"][0] + rows, counts["lifecycle"][1] + changes)
    q.drop_scratch(SCRATCH)
    return counts, None


def _lifecycle_touched(settings: RfmSettings, stores: list[int], member_ids: list[int],
                       now: dt.datetime) -> tuple[int, int, dict[int, str | None]]:
    """An ingestion batch's lifecycle pass: stage ``member_ids`` and write only what moved.

    Most buyers keep their stage. One read per chunk stages the members beside their rows;
    the stages that are new, changed or gone are written from here, as the scratch-table pass
    writes them: history, then the rows (deleted, updated, added) with the moment each member
    entered the stage (the same SQL expression). Returns the members staged, the changes
    recorded, and ``{member: new stage}`` of the members who moved (None: the row went).
    """
    brand_id = settings.brand_id
    kind = ModelChange.Kind.LIFECYCLE
    staged, moved = 0, {}
    changes, gone_changes, added, updated, gone = [], [], [], [], []
    for chunk in _chunks(member_ids):
        with connection.cursor() as cursor:
            cursor.execute(*scoring.lifecycle_rows_select(settings, stores, chunk, now))
            found = cursor.fetchall()
        staged += len(found)
        for member, stage, row, old, since in found:
            if stage == old:
                continue
            moved[member] = stage
            changes.append((member, brand_id, kind, old or "", stage, now))
            if row is None:
                added.append((member, brand_id, stage, q.from_db_moment(since), now))
            else:
                updated.append((row, stage, q.from_db_moment(since), now))
        unstaged = sorted(set(chunk).difference(member for member, *_rest in found))
        if unstaged:  # a row without a staged member: the member has no counted order left
            for row, member, old in (MemberLifecycle.objects.filter(among("member_id", unstaged), brand_id=brand_id)
                                     .order_by("member_id").values_list("pk", "member_id", "stage")):
                moved[member] = None
                gone.append(row)
                gone_changes.append((member, brand_id, kind, old, "", now))
    changes += gone_changes
    insert_rows(ModelChange, ["member_id", "brand_id", "kind", "old_value", "new_value", "at"], changes)
    note_bulk_write(ModelChange, len(changes))
    if gone:
        MemberLifecycle.objects.filter(pk__in=gone).delete()
    update_rows(MemberLifecycle, ["stage", "since", "computed_at"], updated)
    # A row another batch added meanwhile (one member in two concurrent batches) stays as it is.
    insert_rows(MemberLifecycle, ["member_id", "brand_id", "stage", "since", "computed_at"], added,
                ignore_conflicts=True)
    note_bulk_write(MemberLifecycle, len(added))
    return staged, len(changes), moved


def _rfm_touched(settings: RfmSettings, stores: list[int], member_ids: list[int], now: dt.datetime) -> bool:
    start = now - dt.timedelta(days=settings.window_days)
    for chunk in _chunks(member_ids):
        if (MemberRfm.objects.filter(brand_id=settings.brand_id, member_id__in=chunk).exists()
                or Order.objects.filter(member_id__in=chunk, store_id__in=stores, is_counted=True,
                                        ordered_at__gte=start, ordered_at__lte=now).exists()):
            return True
    return False


def _record_and_prune(model, column: str, kind: str, new_value: str, staged: str, brand_id: int,
                      chunk: list[int] | None, now: dt.datetime) -> int:
    """Before the upsert: record a change for every staged member (scratch rows matching
    ``staged``, of the chunk, if given) whose value is new or differs from ``model``'s row, and
    for every row (of the brand, or of the chunk's members) whose member is not staged any more;
    then delete those rows. Returns the changes recorded."""
    qn = connection.ops.quote_name
    table, history, scratch = qn(model._meta.db_table), qn(ModelChange._meta.db_table), qn(SCRATCH)
    brand_id = int(brand_id)

    def in_scope(alias: str) -> str:
        return (f"{alias}.brand_id = {brand_id} AND {scoring.in_chunk(alias, chunk)} AND NOT EXISTS "  # noqa: S608
                f"(SELECT 1 FROM {scratch} t WHERE t.member_id = {alias}.member_id AND {staged})")

    insert = f"INSERT INTO {history} (member_id, brand_id, kind, old_value, new_value, at) "
    at = q.moment(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert}SELECT t.member_id, {brand_id}, %s, COALESCE(r.{column}, ''), {new_value}, %s "  # noqa: S608
            f"FROM {scratch} t LEFT JOIN {table} r ON r.member_id = t.member_id AND r.brand_id = {brand_id} "
            f"WHERE {staged} AND {scoring.in_chunk('t', chunk)} AND (r.{column} IS NULL OR r.{column} <> {new_value}) "
            f"ORDER BY t.member_id", [kind, at])
        changes = cursor.rowcount
        cursor.execute(f"{insert}SELECT r.member_id, {brand_id}, %s, r.{column}, '', %s FROM {table} r "  # noqa: S608
                       f"WHERE {in_scope('r')}", [kind, at])
        changes += cursor.rowcount
        note_bulk_write(ModelChange, changes)
        # MySQL cannot alias the table a DELETE removes from: name it in full.
        cursor.execute(f"DELETE FROM {table} WHERE {in_scope(table)}")  # noqa: S608
    return changes


def _upsert(model, select_sql: str, now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(select_sql, [q.moment(now)])
        written = cursor.rowcount
    # Batch after batch adds rows: the planner must see them, or it reads a brand's every row to
    # find a batch's members (a never-analysed table looks a few pages long).
    note_bulk_write(model, written)


__all__ = ["ModelsResult", "recompute_lifecycle", "recompute_models", "recompute_rfm", "sync_model_tags"]
