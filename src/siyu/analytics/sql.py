"""Portable SQL fragments for the model recomputes: day arithmetic and scratch tables.

Everything here returns SQL text for the connection's vendor (SQLite, PostgreSQL, MySQL/MariaDB).
Statements built from these fragments always carry parameters, so a literal ``%`` is written
``%%``. Integers (ids, day counts) are written into the SQL as literals after ``int()``; values
that are not integers travel as parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connection

from siyu.core.db import prefer_index_probes
from siyu.org.models import Brand


def moment(value: dt.datetime):
    """``value`` as a parameter comparable with a ``DateTimeField`` column in raw SQL."""
    return connection.ops.adapt_datetimefield_value(value)


def ints(values: Iterable[int]) -> str:
    """``(1, 2, 3)`` for ``IN``: integers only, so the literal is safe."""
    return "(" + ", ".join(str(int(v)) for v in values) + ")"


def is_in(column: str, values: Sequence[int]) -> str:
    """``column IN (…)``, or a condition that is never true for an empty list."""
    return f"{column} IN {ints(values)}" if values else "1 = 0"


def whole_days(start: str, end: str) -> str:
    """The whole days elapsed from ``start`` to ``end`` (both SQL datetime expressions), floored.

    SQLite keeps datetimes as text and counts whole seconds; the others count microseconds.
    """
    vendor = connection.vendor
    if vendor == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end}) - ({start})) / 86400) AS INTEGER)"
    if vendor == "mysql":
        return f"TIMESTAMPDIFF(DAY, {start}, {end})"
    return (f"((CAST(strftime('%%s', {end}) AS INTEGER) - CAST(strftime('%%s', {start}) AS INTEGER))"
            f" / 86400)")


def plus_days(value: str, days: int) -> str:
    """The datetime expression ``value`` moved ``days`` days later."""
    days = int(days)
    vendor = connection.vendor
    if vendor == "postgresql":
        return f"(({value}) + INTERVAL '{days} days')"
    if vendor == "mysql":
        return f"(({value}) + INTERVAL {days} DAY)"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {value}, '+{days} days')"


def from_db_moment(value) -> dt.datetime:
    """A moment as a raw cursor returns it: aware (PostgreSQL), naive UTC (MySQL) or text (SQLite)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def create_scratch(name: str, select_sql: str, params: list) -> None:
    """(Re)create the temporary table ``name`` from ``select_sql`` (which has a unique
    ``member_id`` column, indexed).

    Temporary tables are private to this connection; on PostgreSQL and SQLite one created inside
    a transaction disappears when it rolls back. ``CREATE TABLE … AS`` lets PostgreSQL scan and
    aggregate in parallel, which ``INSERT … SELECT`` does not.
    """
    drop_scratch(name)
    table = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":  # CREATE INDEX would commit the transaction on MySQL
            cursor.execute(f"CREATE TEMPORARY TABLE {table} (PRIMARY KEY (member_id)) {select_sql}", params)
        else:
            cursor.execute(f"CREATE TEMPORARY TABLE {table} AS {select_sql}", params)
            cursor.execute(f"CREATE UNIQUE INDEX {connection.ops.quote_name(name + '_member')} ON {table} (member_id)")
        if connection.vendor == "postgresql":  # no statistics on temporary tables until asked
            cursor.execute(f"ANALYZE {table}")


def count_scratch(name: str, where: str) -> int:
    """Rows of the scratch table (alias ``t``) matching ``where``."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(name)} t WHERE {where}")  # noqa: S608
        return cursor.fetchone()[0]


def drop_scratch(name: str) -> None:
    # MySQL's TEMPORARY keyword makes sure a permanent table of that name is never touched.
    temporary = "TEMPORARY " if connection.vendor == "mysql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP {temporary}TABLE IF EXISTS {connection.ops.quote_name(name)}")


def lock_brand(brand_id: int, *, exclusive: bool) -> None:
    """Lock the brand's row until the transaction ends: shared (other shared holders welcome)
    or exclusive. Stores can still be added to the brand meanwhile on PostgreSQL (their foreign
    key check takes a KEY SHARE lock). SQLite locks the whole database for writes anyway."""
    vendor = connection.vendor
    if vendor == "sqlite":
        return
    if vendor == "postgresql":
        mode = "FOR NO KEY UPDATE" if exclusive else "FOR SHARE"
    else:
        mode = "FOR UPDATE" if exclusive else "LOCK IN SHARE MODE"
    qn, meta = connection.ops.quote_name, Brand._meta
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn(meta.pk.column)} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s {mode}",  # noqa: S608
                       [int(brand_id)])


def tune_for_aggregates(*, few_members: bool = False) -> None:
    """For the rest of the transaction on PostgreSQL: no JIT (compiling the aggregate costs
    seconds and saves none) and room to hash a brand's buyers in memory.

    With ``few_members`` (a batch's touched members, at most a thousand per statement) the
    planner probes the ``(member, ordered_at)`` index for them (:func:`siyu.core.db.prefer_index_probes`).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
        if few_members:
            prefer_index_probes()
