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


def column_type(internal_type: str, **params) -> str:
    """The vendor's column type for a Django field type (``"DecimalField"`` …)."""
    return connection.data_types[internal_type] % params


def create_scratch(name: str, columns: Sequence[tuple[str, str]]) -> None:
    """(Re)create a temporary table ``name`` with ``columns`` = ``[(name, SQL type)]``; the first
    column is the primary key. Temporary tables are private to this connection; on PostgreSQL
    and SQLite one created inside a transaction disappears when it rolls back."""
    drop_scratch(name)
    body = ", ".join(f"{col} {sql_type}{' PRIMARY KEY' if i == 0 else ''}"
                     for i, (col, sql_type) in enumerate(columns))
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {connection.ops.quote_name(name)} ({body})")


def drop_scratch(name: str) -> None:
    # MySQL's TEMPORARY keyword makes sure a permanent table of that name is never touched.
    temporary = "TEMPORARY " if connection.vendor == "mysql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP {temporary}TABLE IF EXISTS {connection.ops.quote_name(name)}")


def clear_scratch(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(name)}")  # noqa: S608 - quoted name


def analyze_scratch(name: str) -> None:
    """PostgreSQL keeps no statistics on temporary tables until told; the joins that follow
    need them once the table holds a brand's million buyers."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(name)}")
