"""Column mapping: a preset's header names, overridden by ``--map field=column``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from siyu.integrations.importers.errors import ImportSetupError
from siyu.integrations.importers.fields import FIELDS, REQUIRED, is_known
from siyu.integrations.importers.presets import Preset


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["paid_amount=实收", "phone="]`` → ``{"paid_amount": "实收", "phone": ""}`` (empty: unmap)."""
    mapping: dict[str, str] = {}
    for item in items:
        text = item.strip()
        if not text:
            continue
        name, sep, column = text.partition("=")
        if not sep or not name.strip():
            raise ImportSetupError(_('a column mapping is written field=column, got "%(v)s"') % {"v": text},
                                   code="bad_mapping")
        mapping[name.strip()] = column.strip()
    return mapping


def _norm(name: str) -> str:
    return re.sub(r"\s+", "", name).casefold()


@dataclass
class Layout:
    """Which column (or NDJSON key) feeds which field."""

    entity: str
    aliases: dict[str, tuple[str, ...]]
    overrides: dict[str, str]
    columns: dict[str, str] = field(default_factory=dict)  # field → column, tabular files only
    ignored: list[str] = field(default_factory=list)
    _key_cache: dict[tuple[str, ...], dict[str, str]] = field(default_factory=dict, repr=False)

    def map_row(self, cells: Mapping[str, Any]) -> dict[str, Any]:
        columns = self.columns or self._columns_for(tuple(cells))
        return {name: cells[column] for name, column in columns.items() if column in cells}

    def _columns_for(self, keys: tuple[str, ...]) -> dict[str, str]:
        """NDJSON has no header: resolve the mapping per distinct key set."""
        if keys not in self._key_cache:
            if len(self._key_cache) > 1000:
                self._key_cache.clear()
            self._key_cache[keys] = _resolve(self.entity, self.aliases, self.overrides, list(keys), strict=False)[0]
        return self._key_cache[keys]


def _resolve(entity: str, aliases: Mapping[str, tuple[str, ...]], overrides: Mapping[str, str],
             columns: list[str], *, strict: bool) -> tuple[dict[str, str], list[str]]:
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(_norm(column), column)
    chosen: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in names:
            if _norm(alias) in by_norm:
                chosen[name] = by_norm[_norm(alias)]
                break
    if entity == "events":
        for column in columns:
            if _norm(column).startswith("properties.") and len(column) > len("properties."):
                chosen.setdefault(column.strip(), column)
    for name, column in overrides.items():
        if not column:
            chosen.pop(name, None)
        elif column in columns or _norm(column) in by_norm:
            chosen[name] = column if column in columns else by_norm[_norm(column)]
        elif strict:
            raise ImportSetupError(
                _('--map %(field)s=%(column)s: the file has no column "%(column)s"; its columns are: %(all)s')
                % {"field": name, "column": column, "all": ", ".join(columns)}, code="unknown_column")
    used = set(chosen.values())
    return chosen, [c for c in columns if c not in used and not c.startswith("#")]


def build_layout(entity: str, preset: Preset, columns: list[str] | None, overrides: Mapping[str, str], *,
                 channel: str = "") -> Layout:
    """Resolve the mapping against a tabular file's header (``columns``) or, for NDJSON
    (``columns=None``), prepare it to be resolved per row. Raises :class:`ImportSetupError` for
    an unknown field, a column the file lacks, or a required field no column feeds."""
    extra = preset.extra_fields.get(entity, ())
    for name in overrides:
        if not is_known(entity, name, extra):
            raise ImportSetupError(
                _("--map: unknown field %(field)s for %(entity)s; fields are: %(all)s")
                % {"field": name, "entity": entity, "all": ", ".join((*FIELDS[entity], *extra))},
                code="unknown_field")
    aliases = dict(preset.columns[entity])
    layout = Layout(entity, aliases, dict(overrides))
    if columns is None:
        return layout
    layout.columns, layout.ignored = _resolve(entity, aliases, overrides, columns, strict=True)
    present = set(layout.columns)
    if channel:
        present.add("channel")
    missing = [group for group in REQUIRED[entity] if not present.intersection(group)]
    if entity == "orders" and "channel" not in present:
        missing.append(("channel",))
    if missing:
        group = missing[0]
        hint = _("pass --channel CODE") if group == ("channel",) else _("map it with --map %(f)s=<column>") % {
            "f": group[0]}
        raise ImportSetupError(
            _("no column for the required field %(field)s (%(hint)s); the file's columns are: %(all)s")
            % {"field": " / ".join(group[:4]), "hint": hint, "all": ", ".join(columns)},
            code="unmapped_required", field=group[0])
    return layout
