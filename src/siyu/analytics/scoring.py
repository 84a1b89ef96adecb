"""The SQL of the RFM and lifecycle recomputes (see :mod:`siyu.analytics.services` for the rules).

Each ``*_select`` function returns the ``SELECT`` (and its parameters) of the new values of one
brand's buyers, all of them or one chunk of member ids, in one aggregate pass over the orders;
the services land it in a scratch table. Classes and stages live in the scratch tables as
numbers and become text only when compared with or written to the real tables (no collation
clashes on MySQL).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

from siyu.analytics import sql as q
from siyu.analytics.models import LifecycleStage, MemberLifecycle, MemberRfm, RfmClass, RfmMethod, RfmSettings
from siyu.commerce.models import Order
from siyu.core.db import upsert_select_sql

#: (r high, f high, m high) → class; high means a score of 3 or more.
RFM_CLASSES = {
    (True, True, True): RfmClass.IMPORTANT_VALUE,
    (True, False, True): RfmClass.IMPORTANT_DEVELOP,
    (False, True, True): RfmClass.IMPORTANT_KEEP,
    (False, False, True): RfmClass.IMPORTANT_RETAIN,
    (True, True, False): RfmClass.GENERAL_VALUE,
    (True, False, False): RfmClass.GENERAL_DEVELOP,
    (False, True, False): RfmClass.GENERAL_KEEP,
    (False, False, False): RfmClass.GENERAL_RETAIN,
}
HIGH = 3
#: Stage numbers in the scratch table.
STAGE_CODES = {LifecycleStage.NEW: 1, LifecycleStage.ACTIVE: 2, LifecycleStage.SILENT: 3,
               LifecycleStage.CHURNED: 4, LifecycleStage.RECALLED: 5}


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def in_chunk(alias: str, chunk: list[int] | None) -> str:
    """``alias.member_id`` among the chunk's members; always true without a chunk."""
    return "1 = 1" if chunk is None else q.is_in(f"{alias}.member_id", chunk)


def _orders_where(alias: str, stores: list[int], chunk: list[int] | None) -> str:
    return (f"{alias}.is_counted = TRUE AND {alias}.member_id IS NOT NULL"
            f" AND {q.is_in(f'{alias}.store_id', stores)} AND {in_chunk(alias, chunk)}")


# --- RFM ----------------------------------------------------------------------------------------

def _rfm_aggregate(stores: list[int], chunk: list[int] | None, now: dt.datetime,
                   window_days: int) -> tuple[str, list]:
    """Per buyer in the window: recency_days, frequency, monetary. Parameters follow the SQL."""
    start = now - dt.timedelta(days=int(window_days))
    sql = (f"SELECT o.member_id AS member_id, {q.whole_days('MAX(o.ordered_at)', '%s')} AS recency_days, "  # noqa: S608
           f"COUNT(*) AS frequency, ROUND(SUM(o.paid_amount) - SUM(o.refunded_amount), 2) AS monetary "
           f"FROM {_qn(Order._meta.db_table)} o WHERE {_orders_where('o', stores, chunk)} "
           f"AND o.ordered_at >= %s AND o.ordered_at <= %s GROUP BY o.member_id")
    return sql, [q.moment(now), q.moment(start), q.moment(now)]


def _threshold_scores(settings: RfmSettings) -> tuple[str, list]:
    """The three score expressions over ``a.recency_days``, ``a.frequency``, ``a.monetary``."""
    rec = settings.cut_points("recency_days")
    freq = settings.cut_points("frequency")
    mon = settings.cut_points("monetary")
    r = "CASE " + " ".join(f"WHEN a.recency_days <= {c} THEN {5 - i}" for i, c in enumerate(rec)) + " ELSE 1 END"
    f = "CASE " + " ".join(f"WHEN a.frequency >= {c} THEN {5 - i}" for i, c in enumerate(reversed(freq))) \
        + " ELSE 1 END"
    m = "CASE " + " ".join(f"WHEN a.monetary >= CAST(%s AS DECIMAL(14, 2)) THEN {5 - i}"
                           for i in range(4)) + " ELSE 1 END"
    return f"{r} AS r_score, {f} AS f_score, {m} AS m_score", [str(c) for c in reversed(mon)]


QUINTILE_ORDER = {
    "r": "a.recency_days DESC, a.member_id",
    "f": "a.frequency, a.member_id",
    "m": "a.monetary, a.member_id",
}


def rfm_select(settings: RfmSettings, stores: list[int], chunk: list[int] | None,
               now: dt.datetime) -> tuple[str, list]:
    """Recency, frequency, monetary and the three scores of the brand's buyers in the window
    (or of a chunk of members, with fixed thresholds only: a quintile depends on every buyer)."""
    aggregate, params = _rfm_aggregate(stores, chunk, now, settings.window_days)
    if settings.method == RfmMethod.THRESHOLDS:
        scores, score_params = _threshold_scores(settings)
        params = score_params + params
    elif chunk is None:
        scores = ", ".join(f"NTILE(5) OVER (ORDER BY {QUINTILE_ORDER[d]}) AS {d}_score" for d in "rfm")
    else:
        raise ValueError("quintiles rank a member among all the brand's buyers: stage the whole brand")
    return (f"SELECT a.member_id, a.recency_days, a.frequency, a.monetary, {scores} FROM ({aggregate}) a",  # noqa: S608
            params)


def rfm_class_sql(alias: str) -> str:
    whens = " ".join(
        f"WHEN {alias}.r_score {'>=' if r else '<'} {HIGH} AND {alias}.f_score {'>=' if f else '<'} {HIGH} "
        f"AND {alias}.m_score {'>=' if m else '<'} {HIGH} THEN '{cls.value}'"
        for (r, f, m), cls in RFM_CLASSES.items())
    return f"CASE {whens} END"


def rfm_upsert_select(scratch: str, brand_id: int, chunk: list[int] | None) -> str:
    """Write the staged scores and classes (of the chunk's members, if given); the one parameter
    is ``computed_at``."""
    columns = ["member_id", "brand_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
               "rfm_class", "computed_at"]
    select = (f"SELECT t.member_id, {int(brand_id)}, t.recency_days, t.frequency, t.monetary, t.r_score, "  # noqa: S608
              f"t.f_score, t.m_score, {rfm_class_sql('t')}, %s FROM {_qn(scratch)} t WHERE {in_chunk('t', chunk)} "
              f"ORDER BY t.member_id")
    return upsert_select_sql(MemberRfm._meta.db_table, columns, select, conflict=["member_id", "brand_id"])


# --- lifecycle ----------------------------------------------------------------------------------

def stage_name_sql(alias: str) -> str:
    whens = " ".join(f"WHEN {code} THEN '{stage.value}'" for stage, code in STAGE_CODES.items())
    return f"CASE {alias}.stage {whens} END"


def lifecycle_select(settings: RfmSettings, stores: list[int], chunk: list[int] | None,
                     now: dt.datetime) -> tuple[str, list]:
    """First and last order and the stage number of the brand's buyers (or a chunk).

    One aggregate pass finds the order before the last one where it matters: the recalled rule
    is reached only when the last order is at most ``silent_days`` old. Call ``recent`` the
    orders after ``now - (silent_days + 2) days``. If a recent order precedes the last one, the
    gap is under ``silent_days + 2`` days, at most ``churned_days`` in whole days (settings keep
    ``silent_days < churned_days``): not recalled. Otherwise the order before the last is the
    latest order that is not recent.
    """
    code = STAGE_CODES
    since_last = q.whole_days("a.last_at", "%s")
    stage = (f"CASE WHEN {q.whole_days('a.first_at', '%s')} <= {int(settings.new_days)} "
             f"THEN {code[LifecycleStage.NEW]} "
             f"WHEN {since_last} > {int(settings.churned_days)} THEN {code[LifecycleStage.CHURNED]} "
             f"WHEN {since_last} > {int(settings.silent_days)} THEN {code[LifecycleStage.SILENT]} "
             f"WHEN a.first_recent = a.last_at AND {q.whole_days('a.before_recent', 'a.last_at')} "
             f"> {int(settings.churned_days)} THEN {code[LifecycleStage.RECALLED]} "
             f"ELSE {code[LifecycleStage.ACTIVE]} END")
    aggregate = (f"SELECT o.member_id AS member_id, MIN(o.ordered_at) AS first_at, MAX(o.ordered_at) AS last_at, "  # noqa: S608
                 f"MIN(CASE WHEN o.ordered_at > %s THEN o.ordered_at END) AS first_recent, "
                 f"MAX(CASE WHEN o.ordered_at <= %s THEN o.ordered_at END) AS before_recent "
                 f"FROM {_qn(Order._meta.db_table)} o WHERE {_orders_where('o', stores, chunk)} "
                 f"AND o.ordered_at <= %s GROUP BY o.member_id")
    at, recent = q.moment(now), q.moment(now - dt.timedelta(days=int(settings.silent_days) + 2))
    return (f"SELECT a.member_id, a.first_at, a.last_at, {stage} AS stage FROM ({aggregate}) a",  # noqa: S608
            [at, at, at, recent, recent, at])


def lifecycle_upsert_select(scratch: str, settings: RfmSettings, chunk: list[int] | None) -> str:
    """Write the stages of members who are new to the brand's lifecycle or changed stage, with
    the moment they entered it; a member whose stage stays keeps the row (and its ``since`` and
    ``computed_at``) untouched. The one parameter is ``computed_at``."""
    brand_id = int(settings.brand_id)
    code = STAGE_CODES
    new_stage = stage_name_sql("t")
    left_by_buying = ", ".join(f"'{s.value}'" for s in
                               (LifecycleStage.SILENT, LifecycleStage.CHURNED, LifecycleStage.RECALLED))
    end_of_new = q.plus_days("t.first_at", settings.new_days + 1)
    since = (f"CASE WHEN t.stage = {code[LifecycleStage.NEW]} THEN t.first_at "
             f"WHEN t.stage = {code[LifecycleStage.RECALLED]} THEN t.last_at "
             f"WHEN t.stage = {code[LifecycleStage.SILENT]} THEN {q.plus_days('t.last_at', settings.silent_days + 1)} "
             f"WHEN t.stage = {code[LifecycleStage.CHURNED]} "
             f"THEN {q.plus_days('t.last_at', settings.churned_days + 1)} "
             f"WHEN l.stage IN ({left_by_buying}) AND t.last_at > {end_of_new} THEN t.last_at "
             f"ELSE {end_of_new} END")
    select = (f"SELECT t.member_id, {brand_id}, {new_stage}, {since}, %s FROM {_qn(scratch)} t "  # noqa: S608
              f"LEFT JOIN {_qn(MemberLifecycle._meta.db_table)} l ON l.member_id = t.member_id "
              f"AND l.brand_id = {brand_id} "
              f"WHERE {in_chunk('t', chunk)} AND (l.stage IS NULL OR l.stage <> {new_stage}) "
              f"ORDER BY t.member_id")
    return upsert_select_sql(MemberLifecycle._meta.db_table, ["member_id", "brand_id", "stage", "since", "computed_at"],
                             select, conflict=["member_id", "brand_id"])
