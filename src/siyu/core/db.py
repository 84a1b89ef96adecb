"""Small portable helpers over the three supported databases."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextvars import ContextVar
from decimal import Decimal

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F, Lookup

_TYPE_SIZE = re.compile(r"\(.*\)")  # varchar(64) -> varchar


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


def id_list(ids: Sequence[int]) -> tuple[str, list]:
    """SQL and parameters for ``… IN (ids)`` in a raw statement: ``{column} {sql}``.

    PostgreSQL gets one array parameter (``= ANY(%s::bigint[])``): with Django's client-side
    binding a thousand separate placeholders cost more to split and quote than the query costs to
    run. The cast keeps the comparison of our ``bigint`` ids hashable (see :func:`among`).
    """
    if connection.vendor == "postgresql":
        return "= ANY(%s::bigint[])", [array_text(ids) or list(ids)]
    return f"IN ({', '.join(['%s'] * len(ids))})", list(ids)


class _ArrayText(str):
    """An array parameter already rendered as PostgreSQL's text literal (``{1,2,NULL}``)."""


def array_text(values: Sequence) -> _ArrayText | None:
    """PostgreSQL's text literal of an array of ints, decimals or booleans (None: NULL), or None for
    any other values. psycopg dumps a list item by item in Python (about 1.4 ms per thousand ids,
    text or binary); the literal is one ``join`` and the server parses it in microseconds."""
    kinds = {type(v) for v in values} - {type(None)}
    if not (kinds <= {int, Decimal} or kinds == {bool}):
        return None
    if bool in kinds:
        return _ArrayText("{" + ",".join("NULL" if v is None else "t" if v else "f" for v in values) + "}")
    if None in values:
        return _ArrayText("{" + ",".join("NULL" if v is None else str(v) for v in values) + "}")
    return _ArrayText("{" + ",".join(map(str, values)) + "}")


def _pg_arrays(rows: Sequence[Sequence]) -> list:
    """One array parameter per column of ``rows`` (for ``unnest``): text literals where
    :func:`array_text` can render them, lists (bound in binary) otherwise."""
    return [array_text(values) or list(values) for values in zip(*rows, strict=True)]


class _Among(Lookup):
    lookup_name = "among"
    prepare_rhs = False

    def get_prep_lookup(self):
        return self.rhs

    def as_sql(self, compiler, connection):
        if not self.rhs:
            raise EmptyResultSet
        lhs, params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return (f"{lhs} = ANY(%s::{self.lhs.output_field.db_type(connection)}[])",
                    [*params, array_text(self.rhs) or self.rhs])
        return f"{lhs} IN ({', '.join(['%s'] * len(self.rhs))})", [*params, *self.rhs]


def among(field: str, values) -> Lookup:
    """``field IN values`` for ``filter()``: ``Order.objects.filter(among("pk", ids))``.

    Put it after the equalities of the same branch (``Q(kind=k) & Q(among("value", v))``): in an
    OR of such branches, PostgreSQL 15 took 13 ms to plan a thousand external ids listed first
    in each branch, and 0.25 ms listed last.

    The values (ints or strings, as the column holds them) are bound as they are: ``__in``
    prepares each one through the field and costs about 10 ms per thousand values to compile;
    PostgreSQL gets one array parameter cast to the column's type (``= ANY(%s::bigint[])``):
    psycopg types a list of small ints as ``smallint[]``, and ``bigint = ANY(smallint[])`` is a
    cross-type comparison PostgreSQL cannot hash — on a table whose statistics lag a bulk load it
    filtered every row against the whole list (90 ms for 1,000 ids over 20,000 rows, 4 ms cast).
    """
    return _Among(F(field), list(values))


def by_code(model, codes, *, hold: bool = False) -> dict:
    """``{code: object}`` for the rows of ``model`` whose ``code`` is in ``codes`` (one query);
    ``hold`` as in :func:`ids_by`."""
    codes = {c for c in codes if c}
    if not codes:
        return {}
    found = model.objects.filter(code__in=codes)
    return {obj.code: obj for obj in (_held(found, model.objects.raw) if hold else found)}


def ids_by(model, field: str, values, *, hold: bool = False) -> dict:
    """``{value: pk}`` for the rows of ``model`` whose ``field`` is in ``values`` (one query).

    With ``hold`` the rows found cannot be deleted until the transaction ends (the share lock a
    foreign-key check takes, once per row for the whole batch): for references written without a
    database constraint, which Django's ``on_delete`` protects once they are committed (a delete
    already under way waits, then goes through: docs/ingestion.md). SQLite locks the database.
    """
    values = {v for v in values if v}
    if not values:
        return {}
    found = model.objects.filter(among(field, sorted(values))).values_list(field, "pk")
    return dict(_held(found, fetch_rows_of) if hold else found)


def _held(queryset, run):
    """``run(sql, params)`` of ``queryset`` with the rows it finds share-locked (not on SQLite)."""
    sql, params = queryset.query.sql_with_params()
    if connection.vendor != "sqlite":
        sql += " FOR KEY SHARE" if connection.vendor == "postgresql" else " LOCK IN SHARE MODE"
    return run(sql, params)


ANALYZE_MIN_ROWS = 10_000
ANALYZE_GROWTH = 1.0
ANALYZE_TARGET = 10  # default_statistics_target of these interim analyses (PostgreSQL's default: 100)
_written: dict[str, int] = {}
_threshold: dict[str, int] = {}


def note_bulk_write(model, rows: int) -> None:
    """Keep PostgreSQL's planner statistics up with a bulk load of ``model``'s table.

    Autovacuum refreshes statistics about once a minute; an import of two years of orders
    outgrows them within seconds, and the per-batch lookups (existing orders, identities) turn
    into sequential scans whose cost grows with the table. PostgreSQL's manual asks for ANALYZE
    after bulk loads: once this process has written as many rows as the table had when it was
    last analysed (at least 10,000), the table is analysed right after the batch commits. The
    estimates stay within a factor of two, which keeps the key lookups on their indexes; each
    ANALYZE samples the table anew, so a load of N rows pays for about log2(N / 10,000) of them
    rather than one per quarter of growth. They sample 3,000 rows, not PostgreSQL's 30,000
    (``ANALYZE_TARGET``): row counts and distinct keys are what the lookups need, and autovacuum
    analyses the table at the full target later.
    Other databases keep their own statistics; this is a no-op there.
    """
    if connection.vendor != "postgresql" or rows <= 0:
        return
    table = model._meta.db_table
    if table not in _threshold:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            estimate = max(cursor.fetchone()[0], 0)  # -1: never analysed
        _threshold[table] = max(ANALYZE_MIN_ROWS, int(estimate * ANALYZE_GROWTH))
    _written[table] = _written.get(table, 0) + rows
    if _written[table] >= _threshold[table]:
        _written[table] = 0
        del _threshold[table]  # re-read the estimate once the analysis has run

        def analyze():
            # A tenth of the default sample: enough for the key lookups' estimates (row counts,
            # distinct keys), and a tenth of the cost (the ledger at 100,000 rows: 11 ms, not 125 ms).
            # Autovacuum analyses the table again at the full target once the load has settled.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL default_statistics_target = {ANALYZE_TARGET}")
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")

        transaction.on_commit(analyze, robust=True)


def _copy_types(fields) -> list[str] | None:
    """The PostgreSQL type names a binary ``COPY`` of ``fields`` declares, or None for the text
    format. Times are what binary is for: rendered as text they cost the most (1,000 order rows
    with four times and three amounts: 3.3 ms binary, 5.3 ms text), while amounts are dearer in
    binary (3,000 order lines with two amounts and no time: 4.8-7.5 ms binary, 4.2 ms text). So
    binary when a column holds times, and every column has a binary dumper."""
    key = tuple(fields)
    if key not in _copy_types_of:  # db_type() renders a template per call: a batch asks a dozen times
        from psycopg.postgres import types

        names = [_TYPE_SIZE.sub("", field.db_type(connection)).strip() for field in fields]
        binary = _TIMES.intersection(names) and all(types.get(name) is not None for name in names)
        _copy_types_of[key] = names if binary else None
    return _copy_types_of[key]


_copy_types_of: dict[tuple, list[str] | None] = {}


_TIMES = {"timestamp with time zone", "timestamp", "date"}


def _adapter(field):
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if kind == "DateField":
        return connection.ops.adapt_datefield_value
    if kind == "JSONField":
        return _json_adapter(field)
    return None


def _json_adapter(field):
    if connection.vendor == "postgresql" and field.encoder is None:
        from psycopg.types.json import Jsonb

        def adapt(value):  # what the field's get_db_prep_save() gives, without its per-value steps
            return None if value is None else Jsonb(value)  # None: SQL NULL, as Django writes it
    else:
        def adapt(value):
            return field.get_db_prep_save(value, connection)

    return adapt


_sequences: dict[str, str] = {}  # table → the sequence of its primary key (PostgreSQL)


def insert_rows(model, fields: Sequence[str], rows: Iterable[Sequence], *, returning: bool = False,
                ignore_conflicts: bool = False, chunk_size: int = 500) -> list[int]:
    """Insert plain tuples: the ingestion hot path's twin of ``bulk_create``.

    ``fields`` are attribute names (``order_id``); every non-null column without a database
    default must be given. With ``returning`` the new primary keys come back in row order
    (PostgreSQL, SQLite, MariaDB; on MySQL, which cannot return them, callers use natural keys).
    With ``ignore_conflicts`` a row clashing with a unique key is skipped (another transaction
    wrote it first) instead of failing the insert. PostgreSQL gets ``COPY`` (binary when the rows
    hold times), or when ignoring conflicts ``INSERT … SELECT … FROM unnest(…) ON CONFLICT DO
    NOTHING`` with one array parameter per column, bound in binary; the others a multi-row
    ``INSERT … VALUES``.

    ``rows`` may be an iterator: PostgreSQL's ``COPY`` then sends each row as it is made, and the
    server stores the first rows while the caller makes the next.
    """
    copying = connection.vendor == "postgresql" and not ignore_conflicts and not returning
    if not isinstance(rows, Sequence) and not copying:
        rows = list(rows)
    if isinstance(rows, Sequence) and not rows:
        return []
    if returning and ignore_conflicts:
        raise ValueError("insert_rows cannot return ids of rows it may skip")
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    names = [quote(c.column) for c in columns]
    ids: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            json_at = [(i, _json_adapter(c)) for i, c in enumerate(columns) if c.get_internal_type() == "JSONField"]
            if json_at:  # COPY and binary arrays dump the Jsonb wrapper, not a dict
                rows = [list(row) for row in rows]
                for row in rows:
                    for i, adapt in json_at:
                        row[i] = adapt(row[i])
        if connection.vendor == "postgresql" and not ignore_conflicts:
            if returning:  # draw the ids first so that they come back in row order
                if meta.db_table not in _sequences:
                    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [meta.db_table, meta.pk.column])
                    _sequences[meta.db_table] = cursor.fetchone()[0]
                # The sequence by name: pg_get_serial_sequence() in the select list ran once per row,
                # 2.4 ms for a thousand ids against 0.6 ms.
                cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                               [_sequences[meta.db_table], len(rows)])
                ids = [row[0] for row in cursor.fetchall()]
                names.insert(0, quote(meta.pk.column))
                rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
            types = _copy_types([meta.pk, *columns] if returning else columns)
            binary = " (FORMAT BINARY)" if types else ""
            with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({', '.join(names)}) FROM STDIN{binary}") as copy:
                if types:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            return ids
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns)
            sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(names)}) "  # noqa: S608
                   f"SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING")
            for part in chunked(rows, 5000):
                _execute_binary(cursor, sql, _pg_arrays(part))
            return ids
        adapters = [_adapter(column) for column in columns]
        verb = "INSERT IGNORE" if ignore_conflicts and connection.vendor == "mysql" else "INSERT"
        head = f"{verb} INTO {quote(meta.db_table)} ({', '.join(names)}) VALUES "
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        tail = f" RETURNING {quote(meta.pk.column)}" if returning else ""
        if ignore_conflicts and connection.vendor == "sqlite":
            tail = " ON CONFLICT DO NOTHING"
        for part in chunked(rows, chunk_size):
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


def update_rows(model, fields: Sequence[str], rows: Sequence[Sequence], *, add: Collection[str] = (),
                also: dict | None = None, chunk_size: int = 500,
                meanwhile: Callable[[], object] | None = None) -> int:
    """Update many rows by primary key, each with its own values: the hot path's twin of
    ``bulk_update`` (which sends a ``CASE`` of one branch per row and column).

    ``rows`` are ``(pk, value, …)`` with the values in the order of ``fields`` (attribute names),
    one row per key; a field in ``add`` moves by its value (``balance = balance + value``: counters
    of locked rows) instead of being set to it; ``also`` sets columns to one value on every row
    (``{"updated_at": now}``). One statement per chunk joining the values as a table: PostgreSQL
    ``unnest`` of one array per column, SQLite ``VALUES``, MySQL/MariaDB a ``UNION ALL`` derived
    table. Returns the number of rows updated. ``meanwhile``: as for :func:`fetch_rows`, while the
    last statement runs.
    """
    if not rows:
        alone(meanwhile)
        return 0
    meta = model._meta
    quote = connection.ops.quote_name
    vendor = connection.vendor
    table = quote(meta.db_table)
    key = quote(meta.pk.column)
    columns = [meta.get_field(name) for name in fields]
    # SQLite names the columns of VALUES column1, column2, …; the key is column1.
    names = [f"column{i + 2}" if vendor == "sqlite" else f"c{i}" for i in range(len(columns))]
    owner = f"{table}." if vendor == "mysql" else ""  # MySQL's joined UPDATE qualifies its SET targets

    def assignment(field, name: str) -> str:
        value = f"{owner}{quote(field.column)} + v.{name}" if field.attname in add or field.name in add else f"v.{name}"
        return f"{owner}{quote(field.column)} = {value}"

    fixed = [(meta.get_field(name), value) for name, value in (also or {}).items()]
    sets = ", ".join([*(assignment(f, n) for f, n in zip(columns, names, strict=True)),
                      *(f"{owner}{quote(field.column)} = %s" for field, _value in fixed)])
    fixed_params = [adapt(value) if (adapt := _adapter(field)) and value is not None else value
                    for field, value in fixed]
    adapters = [_adapter(field) for field in [meta.pk, *columns]]
    width = len(columns) + 1
    updated = 0
    with connection.cursor() as cursor:
        parts = list(chunked(rows, chunk_size))
        for n, part in enumerate(parts, 1):
            if vendor == "postgresql":
                arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [meta.pk, *columns])
                # The keys again as a condition on the table: the planner then reads the rows by
                # primary key, where the join alone hashed a scan of the whole table.
                sql = (f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS v(k, {', '.join(names)}) "  # noqa: S608
                       f"WHERE {table}.{key} = v.k AND {table}.{key} = ANY(%s::{meta.pk.db_type(connection)}[])")
                params = [*fixed_params, *_pg_arrays(part)]
                params.append(params[len(fixed_params)])
            else:
                values = [adapt(value) if adapt and value is not None else value
                          for row in part for adapt, value in zip(adapters, row, strict=True)]
                if vendor == "sqlite":
                    one = "(" + ", ".join(["%s"] * width) + ")"
                    sql = (f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([one] * len(part))}) AS v "  # noqa: S608
                           f"WHERE {table}.{key} = v.column1")
                    params = [*fixed_params, *values]
                else:
                    first = "SELECT " + ", ".join(f"%s AS {n}" for n in ["k", *names])
                    more = " UNION ALL SELECT " + ", ".join(["%s"] * width)
                    sql = (f"UPDATE {table} JOIN ({first}{more * (len(part) - 1)}) AS v "  # noqa: S608
                           f"ON {table}.{key} = v.k SET {sets}")
                    params = [*values, *fixed_params]
            if vendor == "postgresql":
                updated += _execute_binary(cursor, sql, params, meanwhile=meanwhile if n == len(parts) else None)
                continue
            cursor.execute(sql, params)  # quoted names, placeholders for every value
            updated += cursor.rowcount
    if vendor != "postgresql":
        alone(meanwhile)
    return updated


def _execute_binary(cursor, sql: str, params: list, *, fetch: bool = False,
                    meanwhile: Callable[[], object] | None = None) -> int | list[tuple]:
    """Run ``sql`` on PostgreSQL with its parameters bound by the server in binary; returns the rows
    it touched, or with ``fetch`` the rows it gave, read in binary. For array parameters: Django's
    client-side binding renders each array as text, a time at about 3 µs (700 of them: 2 ms), where
    binary takes a tenth of that. Arrays rendered by :func:`array_text` go as text, which is cheaper
    still. Same connection and transaction; Django wraps the cursor as its own (query log, execute
    wrappers). ``meanwhile``: see :func:`fetch_rows`."""
    import psycopg

    pieces = sql.split("%s")
    marked = pieces[0] + "".join(("%t" if isinstance(param, _ArrayText) else "%b") + piece
                                 for param, piece in zip(params, pieces[1:], strict=True))
    raw = psycopg.Cursor(cursor.cursor.connection)
    if fetch:
        raw.format = psycopg.pq.Format.BINARY
    with connection._prepare_cursor(raw) as bound:
        if meanwhile is None or not psycopg.Pipeline.is_supported():
            alone(meanwhile)
            bound.execute(marked, params)
        else:
            # Pipeline mode: the statement goes to the server at once and the results are read
            # when asked for, so the server runs it while ``meanwhile`` runs here.
            with connection.wrap_database_errors, raw.connection.pipeline():
                bound.execute(marked, params)
                alone(meanwhile)
        return bound.fetchall() if fetch else bound.rowcount


def alone(meanwhile: Callable[[], object] | None) -> None:
    """Call ``meanwhile`` (if given), refusing any query it makes: work promised to need no
    database, run while a statement is in flight (see :func:`fetch_rows`)."""
    if meanwhile is None:
        return

    def refuse(execute, sql, params, many, context):
        raise RuntimeError(f"no query may run while another is in flight: {sql[:80]}")

    with connection.execute_wrapper(refuse):
        meanwhile()


#: Work offered by :func:`spare_time`, taken by :func:`spare_work`.
_spare: ContextVar[Callable[[], object] | None] = ContextVar("siyu_spare_work", default=None)


@contextlib.contextmanager
def spare_time(work: Callable[[], object]) -> Iterator[None]:
    """Offer ``work`` (which must not use the database) to run while the database is busy: a
    statement long enough to hide it takes it with :func:`spare_work` and passes it as its
    ``meanwhile``. Whoever offers it checks afterwards whether it ran, and runs it if not: it
    runs at most once, and nothing promises that it runs inside the block."""
    token = _spare.set(work)
    try:
        yield
    finally:
        _spare.reset(token)


def spare_work() -> Callable[[], object] | None:
    """The work :func:`spare_time` offers, taken (a second call gives None), or None."""
    work = _spare.get()
    if work is not None:
        _spare.set(None)
    return work


def fetch_rows(queryset, *, meanwhile: Callable[[], object] | None = None) -> list[tuple]:
    """The rows of a ``values_list()`` queryset (not ``flat``), as a list of tuples.

    PostgreSQL reads them in binary, all at once: Django reads results as text, 100 rows a
    round, and a time as text costs about 1 µs to load against a tenth of that in binary (a batch
    locks a thousand accounts of four times each). Only numbers, booleans, text, dates and times
    are read so; other fields (JSON, addresses, whose text loaders Django replaces) are read the
    usual way, and so is everything elsewhere.

    ``meanwhile`` is called once, with no arguments, while the database runs the query: on
    PostgreSQL the query is sent first and its rows read after the call (pipeline mode), so that
    the work of both sides overlaps; elsewhere the call comes first. It must not use the database
    (a query it makes raises ``RuntimeError``).
    """
    if connection.vendor != "postgresql":
        alone(meanwhile)
        return list(queryset)
    compiler = queryset.query.get_compiler(using=queryset.db)
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:
        alone(meanwhile)
        return []
    columns = [column for column, *_rest in compiler.select]
    if compiler.get_converters(columns) or any(
            column.output_field.get_internal_type() not in _BINARY_SAFE for column in columns):
        alone(meanwhile)
        return list(queryset)
    return fetch_rows_of(sql, params, meanwhile=meanwhile)


#: Fields whose values psycopg reads in binary as Django's text loaders give them.
_BINARY_SAFE = {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField",
                "ForeignKey", "OneToOneField", "BooleanField", "DecimalField", "FloatField", "CharField",
                "TextField", "SlugField", "EmailField", "URLField", "DateField", "DateTimeField"}


def fetch_rows_of(sql: str, params: Sequence, *, meanwhile: Callable[[], object] | None = None) -> list[tuple]:
    """The rows a raw statement gives (``%s`` placeholders), as a list of tuples: on PostgreSQL
    read in binary (see :func:`fetch_rows`, and there ``meanwhile``), lists of ints sent as
    :func:`array_text`."""
    return _run_raw(sql, params, fetch=True, meanwhile=meanwhile)


def execute_sql(sql: str, params: Sequence, *, meanwhile: Callable[[], object] | None = None) -> int:
    """Run a raw statement (``%s`` placeholders) that returns no rows; returns the rows it
    touched. Parameters go as in :func:`fetch_rows_of`, and so does ``meanwhile``."""
    return _run_raw(sql, params, fetch=False, meanwhile=meanwhile)


def _run_raw(sql: str, params: Sequence, *, fetch: bool, meanwhile: Callable[[], object] | None):
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            alone(meanwhile)
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if fetch else cursor.rowcount
        params = [(array_text(p) or p) if isinstance(p, list) else p for p in params]
        return _execute_binary(cursor, sql, params, fetch=fetch, meanwhile=meanwhile)


def room_for_updates(*tables: str, fillfactor: int = 50):
    """A migration operation that leaves room on each page of ``tables`` on PostgreSQL, for rows
    rewritten all the time (kept totals, balances): with free space on its page PostgreSQL updates
    a row in place (a HOT update, when no indexed column changes) instead of adding it again to
    every index. Other databases update in place anyway; reversing packs the pages again."""
    from django.db import migrations

    def alter(schema_editor, setting: str) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for table in tables:
                schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} {setting}")

    return migrations.RunPython(lambda apps, editor: alter(editor, f"SET (fillfactor = {int(fillfactor)})"),
                                lambda apps, editor: alter(editor, "RESET (fillfactor)"), elidable=False)


def prefer_index_probes() -> None:
    """For the rest of the transaction on PostgreSQL: random page reads costed for solid-state
    storage with the data cached (``random_page_cost`` 1.1, against the default 4 meant for
    spinning disks), for statements that read the rows of a few thousand keys. With the default the
    planner read every order of a brand's stores rather than probe ``(member, ordered_at)`` for a
    batch's thousand buyers (23 ms against 8 ms at 100,000 orders, the gap growing with the table)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL random_page_cost = 1.1")


def use_fast_timestamp_loader(sender, connection, **kwargs) -> None:
    """``connection_created``: on PostgreSQL with the session in UTC (Django's setting with
    ``USE_TZ`` and no per-database ``TIME_ZONE``), read ``timestamptz`` values with
    ``datetime.fromisoformat``, falling back to Django's loader for what it cannot read (BC
    dates, infinity).

    Both give the same aware datetime in ``datetime.timezone.utc``; Django's loader (a subclass
    of psycopg's pure-Python one) costs about 3 µs a value against 0.5 µs, and ingestion reads
    thousands a batch (locked accounts, tier rows, lots). The ``timezone`` attribute is what
    Django compares before it would register its own loader again on a cursor.
    """
    import datetime as dt

    if connection.vendor != "postgresql" or connection.timezone is not dt.UTC:
        return
    from django.db.backends.postgresql.psycopg_any import BaseTzLoader

    class UtcTimestamptzLoader(BaseTzLoader):
        timezone = dt.UTC

        def load(self, data):
            try:
                return dt.datetime.fromisoformat(bytes(data).decode())  # '2025-03-01 02:00:00.5+00'
            except ValueError:
                return super().load(data)

    connection.connection.adapters.register_loader("timestamptz", UtcTimestamptzLoader)
