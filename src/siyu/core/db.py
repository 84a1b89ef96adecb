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
