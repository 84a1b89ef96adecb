"""Small portable helpers over the three supported databases."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection


def upsert(model, objs: Sequence, *, unique_fields: Sequence[str], update_fields: Sequence[str],
           batch_size: int = 1000) -> None:
    """``INSERT … ON CONFLICT DO UPDATE`` (``ON DUPLICATE KEY UPDATE`` on MySQL/MariaDB)."""
    if not objs:
        return
    target = unique_fields if connection.features.supports_update_conflicts_with_target else None
    model.objects.bulk_create(objs, update_conflicts=True, unique_fields=target,
                              update_fields=update_fields, batch_size=batch_size)


def bulk_insert(model, objs: list, *, key: str, batch_size: int = 1000) -> list:
    """Insert and make sure every object has its primary key (MySQL returns none)."""
    if not objs:
        return objs
    model.objects.bulk_create(objs, batch_size=batch_size)
    if objs[0].pk is None:
        ids = dict(model.objects.filter(**{f"{key}__in": [getattr(o, key) for o in objs]})
                   .values_list(key, "pk"))
        for obj in objs:
            obj.pk = ids[getattr(obj, key)]
    return objs


def chunked(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def ids_by(model, field: str, values) -> dict:
    """``{value: pk}`` for the rows of ``model`` whose ``field`` is in ``values`` (one query)."""
    values = {v for v in values if v}
    if not values:
        return {}
    return dict(model.objects.filter(**{f"{field}__in": values}).values_list(field, "pk"))


def _adapter(field):
    if field.get_internal_type() == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if field.get_internal_type() == "DateField":
        return connection.ops.adapt_datefield_value
    return None


def insert_rows(model, fields: Sequence[str], rows: Sequence[Sequence], *, returning: bool = False,
                chunk_size: int = 500) -> list[int]:
    """Insert plain tuples with multi-row ``INSERT … VALUES``: the hot-path twin of bulk_create.

    ``fields`` are attribute names (``order_id``); every non-null column without a database
    default must be given. With ``returning`` the new primary keys come back in row order
    (PostgreSQL, SQLite and MariaDB; callers fall back to natural keys where
    ``can_return_rows_from_bulk_insert`` is false).
    """
    if not rows:
        return []
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    adapters = [_adapter(column) for column in columns]
    head = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c.column) for c in columns)}) "
    tail = f" RETURNING {quote(meta.pk.column)}" if returning else ""
    unnest = connection.vendor == "postgresql"
    if unnest:
        # One array parameter per column: a short statement psycopg parses once, whatever the row count.
        head += "SELECT * FROM UNNEST(" + ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns) + ")"  # noqa: S608
        chunk_size *= 10
    else:
        head += "VALUES "
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    ids: list[int] = []
    if unnest and not returning:
        # Nothing to return: COPY is PostgreSQL's fastest way in, values adapted by psycopg itself.
        copy_sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(c.column) for c in columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
        return ids
    with connection.cursor() as cursor:
        for part in chunked(rows, chunk_size):
            if unnest:
                params = [[adapt(v) if adapt and v is not None else v for v in values] if adapt else list(values)
                          for adapt, values in zip(adapters, zip(*part, strict=True), strict=True)]
                cursor.execute(head + tail, params)
            else:
                params = [adapt(value) if adapt and value is not None else value
                          for row in part for adapt, value in zip(adapters, row, strict=True)]
                cursor.execute(head + ", ".join([one] * len(part)) + tail, params)
            if returning:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


def upsert_select_sql(table: str, columns: Sequence[str], select_sql: str, *, conflict: Sequence[str],
                      merge: dict[str, str] | None = None) -> str:
    """``INSERT INTO table (columns) SELECT …`` that, on a clash of the ``conflict`` key, updates
    the other columns: replaced by default, or merged by ``merge[column]``: ``"add"`` (counters,
    sums), ``"min"`` / ``"max"`` (first/last times; NULL means no value yet).
    """
    quote = connection.ops.quote_name
    cols = ", ".join(quote(c) for c in columns)
    mysql = connection.vendor == "mysql"
    merge = merge or {}

    def assignment(column: str) -> str:
        old = quote(column) if mysql else f"{quote(table)}.{quote(column)}"
        new = f"VALUES({quote(column)})" if mysql else f"excluded.{quote(column)}"
        rule = merge.get(column)
        if rule == "add":
            value = f"{old} + {new}"
        elif rule in ("min", "max"):
            better = "<" if rule == "min" else ">"
            value = f"CASE WHEN {old} IS NULL OR {new} {better} {old} THEN {new} ELSE {old} END"
        else:
            value = new
        return f"{quote(column)} = {value}"

    sets = ", ".join(assignment(c) for c in columns if c not in conflict)
    if mysql:
        return f"INSERT INTO {quote(table)} ({cols}) {select_sql} ON DUPLICATE KEY UPDATE {sets}"
    target = ", ".join(quote(c) for c in conflict)
    return f"INSERT INTO {quote(table)} ({cols}) {select_sql} ON CONFLICT ({target}) DO UPDATE SET {sets}"
