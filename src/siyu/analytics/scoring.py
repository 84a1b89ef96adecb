"""The SQL of the RFM and lifecycle recomputes (see :mod:`siyu.analytics.services` for the rules).

Each ``stage_*`` function fills a scratch table with the new values of one brand's buyers (all,
or one chunk of member ids) in one ``INSERT … SELECT`` and returns how many rows it staged.
Classes and stages live in the scratch tables as numbers and become text only when compared
with or written to the real tables (no collation clashes on MySQL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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



def rfm_scratch_columns() -> list[tuple[str, str]]:
    return [
        ("member_id", q.column_type("BigIntegerField")),
        ("recency_days", q.column_type("IntegerField")),
        ("frequency", q.column_type("IntegerField")),
        ("monetary", q.column_type("DecimalField", max_digits=14, decimal_places=2)),
        ("r_score", q.column_type("SmallIntegerField")),
        ("f_score", q.column_type("SmallIntegerField")),
        ("m_score", q.column_type("SmallIntegerField")),
    ]


def lifecycle_scratch_columns() -> list[tuple[str, str]]:
    return [
        ("member_id", q.column_type("BigIntegerField")),
        ("first_at", q.column_type("DateTimeField")),
        ("last_at", q.column_type("DateTimeField")),
        ("stage", q.column_type("SmallIntegerField")),
    ]


def _qn(name: str) -> str:
    return connection.ops.quote_name(name)


def _orders_where(alias: str, stores: list[int], chunk: list[int] | None) -> str:
    members = f" AND {q.is_in(f'{alias}.member_id', chunk)}" if chunk is not None else ""
    return (f"{alias}.is_counted = TRUE AND {alias}.member_id IS NOT NULL"
            f" AND {q.is_in(f'{alias}.store_id', stores)}{members}")


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
    return f"{r}, {f}, {m}", [str(c) for c in reversed(mon)]


QUINTILE_ORDER = {
    "r": "a.recency_days DESC, a.member_id",
    "f": "a.frequency, a.member_id",
    "m": "a.monetary, a.member_id",
}


def stage_rfm(scratch: str, settings: RfmSettings, stores: list[int], chunk: list[int] | None,
              now: dt.datetime) -> int:
    """Stage recency, frequency, monetary and, unless a chunk is scored by quantiles (see
    :func:`score_from_boundaries`), the scores."""
    aggregate, params = _rfm_aggregate(stores, chunk, now, settings.window_days)
    if settings.method == RfmMethod.THRESHOLDS:
        scores, score_params = _threshold_scores(settings)
        params = score_params + params
    elif chunk is None:
        scores = ", ".join(f"NTILE(5) OVER (ORDER BY {QUINTILE_ORDER[d]})" for d in "rfm")
    else:
        scores = "NULL, NULL, NULL"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_qn(scratch)} (member_id, recency_days, frequency, monetary, r_score, f_score, m_score) "  # noqa: S608
            f"SELECT a.member_id, a.recency_days, a.frequency, a.monetary, {scores} FROM ({aggregate}) a", params)
        return cursor.rowcount


@dataclass(frozen=True)
class Boundary:
    """The last buyer of one quintile in a dimension's order: (value, member id)."""

    value: object
    member_id: int


def _tile_end_sql(k: int) -> str:
    """Row number of the last row of tile ``k`` of ``NTILE(5)`` over ``s.n`` rows: the first
    ``n % 5`` tiles hold one row more than the others."""
    per, extra = "((s.n - s.n %% 5) / 5)", "(s.n %% 5)"
    return f"({k} * {per} + CASE WHEN {extra} < {k} THEN {extra} ELSE {k} END)"


def _tile_ends(n: int) -> list[int]:
    per, extra = divmod(n, 5)
    return [k * per + min(extra, k) for k in range(1, 5)]


def quintile_boundaries(settings: RfmSettings, stores: list[int], now: dt.datetime) -> dict[str, list[Boundary]]:
    """The four quintile boundaries per dimension among all the brand's buyers in the window:
    one aggregate pass returning at most twelve rows."""
    aggregate, params = _rfm_aggregate(stores, None, now, settings.window_days)
    numbers = ", ".join(f"ROW_NUMBER() OVER (ORDER BY {QUINTILE_ORDER[d]}) AS rn_{d}" for d in "rfm")
    ends = " OR ".join(f"s.rn_{d} IN ({', '.join(_tile_end_sql(k) for k in range(1, 5))})" for d in "rfm")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.n, s.rn_r, s.rn_f, s.rn_m, s.member_id, s.recency_days, s.frequency, s.monetary FROM ("  # noqa: S608
            f"SELECT a.member_id, a.recency_days, a.frequency, a.monetary, COUNT(*) OVER () AS n, {numbers} "
            f"FROM ({aggregate}) a) s WHERE {ends}", params)
        rows = cursor.fetchall()
    if not rows:
        return {d: [] for d in "rfm"}
    ends_at = _tile_ends(int(rows[0][0]))
    by_position = {d: {int(row[1 + i]): row for row in rows} for i, d in enumerate("rfm")}
    return {d: [Boundary(value=by_position[d][end][5 + i], member_id=int(by_position[d][end][4]))
                for end in ends_at]
            for i, d in enumerate("rfm")}


def score_from_boundaries(scratch: str, boundaries: dict[str, list[Boundary]]) -> None:
    """Score the staged chunk: 1 + the number of boundaries a member comes after, in the same
    order ``NTILE`` uses, which is the member's quintile in the whole brand."""
    params: list = []

    def score(dimension: str, column: str, after: str) -> str:
        terms = []
        for b in boundaries[dimension]:
            if dimension == "m":
                value = "%s"
                params.extend([b.value, b.value])
            else:
                value = str(int(b.value))
            terms.append(f"CASE WHEN {column} {after} {value} OR ({column} = {value} "
                         f"AND member_id > {int(b.member_id)}) THEN 1 ELSE 0 END")
        return " + ".join(["1", *terms])

    sets = (f"r_score = {score('r', 'recency_days', '<')}, f_score = {score('f', 'frequency', '>')}, "
            f"m_score = {score('m', 'monetary', '>')}")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_qn(scratch)} SET {sets}", params)  # noqa: S608


def rfm_class_sql(alias: str) -> str:
    whens = " ".join(
        f"WHEN {alias}.r_score {'>=' if r else '<'} {HIGH} AND {alias}.f_score {'>=' if f else '<'} {HIGH} "
        f"AND {alias}.m_score {'>=' if m else '<'} {HIGH} THEN '{cls.value}'"
        for (r, f, m), cls in RFM_CLASSES.items())
    return f"CASE {whens} END"


def rfm_upsert_select(scratch: str, brand_id: int) -> str:
    """Write the staged scores and classes; the one parameter is ``computed_at``."""
    columns = ["member_id", "brand_id", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score",
               "rfm_class", "computed_at"]
    select = (f"SELECT t.member_id, {int(brand_id)}, t.recency_days, t.frequency, t.monetary, t.r_score, "  # noqa: S608
              f"t.f_score, t.m_score, {rfm_class_sql('t')}, %s FROM {_qn(scratch)} t WHERE 1 = 1")
    return upsert_select_sql(MemberRfm._meta.db_table, columns, select, conflict=["member_id", "brand_id"])


# --- lifecycle ----------------------------------------------------------------------------------

def stage_name_sql(alias: str) -> str:
    whens = " ".join(f"WHEN {code} THEN '{stage.value}'" for stage, code in STAGE_CODES.items())
    return f"CASE {alias}.stage {whens} END"


def stage_lifecycle(scratch: str, settings: RfmSettings, stores: list[int], chunk: list[int] | None,
                    now: dt.datetime) -> int:
    """Stage first and last order and the stage number of the brand's buyers (or a chunk)."""
    orders = _qn(Order._meta.db_table)
    since_last = q.whole_days("a.last_at", "%s")
    # The order before the last one is looked up only for members the earlier rules left.
    previous = (f"(SELECT MAX(p.ordered_at) FROM {orders} p WHERE p.member_id = a.member_id "  # noqa: S608
                f"AND {_orders_where('p', stores, None)} AND p.ordered_at < a.last_at)")
    code = STAGE_CODES
    stage = (f"CASE WHEN {q.whole_days('a.first_at', '%s')} <= {int(settings.new_days)} "
             f"THEN {code[LifecycleStage.NEW]} "
             f"WHEN {since_last} > {int(settings.churned_days)} THEN {code[LifecycleStage.CHURNED]} "
             f"WHEN {since_last} > {int(settings.silent_days)} THEN {code[LifecycleStage.SILENT]} "
             f"WHEN {q.whole_days(previous, 'a.last_at')} > {int(settings.churned_days)} "
             f"THEN {code[LifecycleStage.RECALLED]} "
             f"ELSE {code[LifecycleStage.ACTIVE]} END")
    aggregate = (f"SELECT o.member_id AS member_id, MIN(o.ordered_at) AS first_at, MAX(o.ordered_at) AS last_at "  # noqa: S608
                 f"FROM {orders} o WHERE {_orders_where('o', stores, chunk)} AND o.ordered_at <= %s "
                 f"GROUP BY o.member_id")
    at = q.moment(now)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {_qn(scratch)} (member_id, first_at, last_at, stage) "  # noqa: S608
                       f"SELECT a.member_id, a.first_at, a.last_at, {stage} FROM ({aggregate}) a", [at, at, at, at])
        return cursor.rowcount


def lifecycle_upsert_select(scratch: str, settings: RfmSettings) -> str:
    """Write the staged stages, keeping ``since`` while a member's stage stays; the one
    parameter is ``computed_at``."""
    brand_id = int(settings.brand_id)
    code = STAGE_CODES
    new_stage = stage_name_sql("t")
    left_by_buying = ", ".join(f"'{s.value}'" for s in
                               (LifecycleStage.SILENT, LifecycleStage.CHURNED, LifecycleStage.RECALLED))
    end_of_new = q.plus_days("t.first_at", settings.new_days + 1)
    since = (f"CASE WHEN l.stage = {new_stage} THEN l.since "
             f"WHEN t.stage = {code[LifecycleStage.NEW]} THEN t.first_at "
             f"WHEN t.stage = {code[LifecycleStage.RECALLED]} THEN t.last_at "
             f"WHEN t.stage = {code[LifecycleStage.SILENT]} THEN {q.plus_days('t.last_at', settings.silent_days + 1)} "
             f"WHEN t.stage = {code[LifecycleStage.CHURNED]} "
             f"THEN {q.plus_days('t.last_at', settings.churned_days + 1)} "
             f"WHEN l.stage IN ({left_by_buying}) AND t.last_at > {end_of_new} THEN t.last_at "
             f"ELSE {end_of_new} END")
    select = (f"SELECT t.member_id, {brand_id}, {new_stage}, {since}, %s FROM {_qn(scratch)} t "  # noqa: S608
              f"LEFT JOIN {_qn(MemberLifecycle._meta.db_table)} l ON l.member_id = t.member_id "
              f"AND l.brand_id = {brand_id} WHERE 1 = 1")
    return upsert_select_sql(MemberLifecycle._meta.db_table, ["member_id", "brand_id", "stage", "since", "computed_at"],
                             select, conflict=["member_id", "brand_id"])
