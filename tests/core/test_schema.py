"""The schema as the database holds it: every index earns its keep."""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db


def _indexes(table: str) -> dict[str, tuple[tuple[str, ...], bool]]:
    """``{name: (columns, unique)}`` of the table's indexes (unique constraints and keys included).
    PostgreSQL's ``…_like`` twins (``varchar_pattern_ops``, for ``LIKE 'x%'``) are left out: they
    serve other queries than the plain index on the same column."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name: (tuple(c["columns"]), bool(c["unique"] or c["primary_key"]))
            for name, c in constraints.items()
            if (c["index"] or c["unique"] or c["primary_key"]) and c["columns"] and not name.endswith("_like")}


def test_no_plain_index_leads_another():
    """An index whose columns are the leading columns of another index answers no query the other
    cannot, and every row written pays for it: the orders, lines, stats, ledger and tag rows of
    each ingestion batch. Foreign keys whose column leads a composite index say ``db_index=False``."""
    models = [m for m in apps.get_models() if m.__module__.startswith("siyu.") and m._meta.managed]
    assert len(models) > 40
    covered = []
    for model in models:
        indexes = _indexes(model._meta.db_table)
        for name, (columns, unique) in indexes.items():
            if unique:
                continue
            wider = [other for other, (cols, _unique) in indexes.items()
                     if other != name and cols[:len(columns)] == columns]
            if wider:
                covered.append(f"{model._meta.db_table}.{name} {columns} <= {sorted(wider)}")
    assert covered == []
