"""RFM classes and lifecycle stages as model tags (模型标签).

Each brand has one exclusive tag group per model — ``rfm-<brand>`` (category *model*, a tag per
class, e.g. ``rfm-<brand>-important-value`` 重要价值客户) and ``lifecycle-<brand>`` (category
*lifecycle*, a tag per stage) — created on first use. A member holds the tag of their current
class or stage with the brand and no other of the group; without a row, none. The recomputes
keep the tags in step through :func:`siyu.tags.services.set_model_tags`, in the same
transaction as the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.db.models import Case, Count, Value, When
from django.utils import translation

from siyu.analytics.models import LifecycleStage, MemberLifecycle, MemberRfm, ModelChange, RfmClass
from siyu.core.db import among
from siyu.tags.models import MemberTag, Tag, TagCategory, TagGroup
from siyu.tags.services import TagResult, set_model_tags

KINDS = ("rfm", "lifecycle")
#: kind → (code prefix, group category, values, the row's model and column, the group's label)
_SPEC = {
    "rfm": ("rfm", TagCategory.MODEL, RfmClass, MemberRfm, "rfm_class", ModelChange.Kind.RFM.label),
    "lifecycle": ("lifecycle", TagCategory.LIFECYCLE, LifecycleStage, MemberLifecycle, "stage",
                  ModelChange.Kind.LIFECYCLE.label),
}
#: Past this many members whose value changed, one comparison of the whole group is cheaper.
WHOLE_GROUP = 20_000
#: Room left in ``Tag.code`` (64) and ``TagGroup.code`` (50) after the prefix and the longest value.
_KEY_LENGTH = 32


@dataclass(frozen=True)
class ModelGroup:
    """A brand's tag group for one model, and its tag per class or stage."""

    group: TagGroup
    tags: dict[str, Tag]


def brand_key(code: str, pk: int) -> str:
    """The brand's part of a model tag code: its code, or a shortened code and its id when long."""
    return code if len(code) <= _KEY_LENGTH else f"{code[:_KEY_LENGTH - 12]}-{pk}"


def group_code(kind: str, brand_code: str, brand_pk: int) -> str:
    return f"{_SPEC[kind][0]}-{brand_key(brand_code, brand_pk)}"


def tag_code(kind: str, brand_code: str, brand_pk: int, value: str) -> str:
    return f"{group_code(kind, brand_code, brand_pk)}-{value.replace('_', '-')}"


def model_groups(brands: Iterable[tuple[int, str, str]], kinds: Iterable[str]) -> dict[tuple[int, str], ModelGroup]:
    """``{(brand_id, kind): ModelGroup}`` for ``(pk, code, name)`` brands, creating what is
    missing (``get_or_create`` on the unique codes, so concurrent callers agree). Two queries
    when everything exists. Names are in the site's language (tags are shared data)."""
    wanted = {(pk, kind): (code, name) for pk, code, name in brands for kind in kinds}
    codes = {group_code(kind, code, pk): (pk, kind) for (pk, kind), (code, _name) in wanted.items()}
    groups = {codes[g.code]: g for g in TagGroup.objects.filter(code__in=list(codes))}
    tags: dict[int, dict[str, Tag]] = {}
    for tag in Tag.objects.filter(group__in=list(groups.values())):
        tags.setdefault(tag.group_id, {})[tag.code] = tag
    result = {}
    with translation.override(settings.LANGUAGE_CODE):
        for (brand_id, kind), (code, name) in wanted.items():
            _prefix, category, values, *_rest, label = _SPEC[kind]
            group = groups.get((brand_id, kind))
            if group is None:
                group, _created = TagGroup.objects.get_or_create(
                    code=group_code(kind, code, brand_id),
                    defaults={"name": f"{label} · {name}"[:100], "category": category, "exclusive": True,
                              "brand_id": brand_id})
            held = tags.get(group.pk, {})
            by_value = {}
            for sort, (value, value_label) in enumerate(values.choices):
                wanted_code = tag_code(kind, code, brand_id, value)
                tag = held.get(wanted_code)
                if tag is None:
                    tag, _created = Tag.objects.get_or_create(
                        code=wanted_code, defaults={"group": group, "name": str(value_label)[:100], "sort": sort})
                by_value[value] = tag
            result[(brand_id, kind)] = ModelGroup(group, by_value)
    return result


def sync_brand(kind: str, brand_id: int, group: ModelGroup, member_ids: list[int] | None, now: dt.datetime, *,
               after_recompute: bool = False) -> TagResult:
    """Make the brand's tag group of ``kind`` follow its rows: of ``member_ids``, or of everyone.

    For everyone right after a full recompute (``after_recompute``), only the members whose value
    changed at ``now`` (the history just written) are compared one by one; then the holders per
    tag are counted against the rows per value, and only if a count differs (tags changed by
    hand, a group just created) is the whole group compared. That keeps the nightly pass at a
    few queries when little changed.
    """
    _prefix, _category, _values, model, column, _label = _SPEC[kind]
    tag_id = Case(*[When(**{column: value}, then=Value(tag.pk)) for value, tag in group.tags.items()],
                  output_field=models.BigIntegerField())
    rows = model.objects.filter(brand_id=brand_id).annotate(tag_id=tag_id).values("member_id", "tag_id")

    def sync(ids: list[int] | None) -> TagResult:
        return set_model_tags(group=group.group, assignments=rows, member_ids=ids, actor=f"model:{kind}", now=now)

    if not after_recompute:
        return sync(member_ids)
    changes = ModelChange.objects.filter(brand_id=brand_id, kind=kind, at=now)
    if member_ids is not None:
        # An ingestion batch: only the touched members whose value the recompute just changed can
        # need their tag moved (the nightly pass below repairs tags changed by other means).
        changed = sorted(set(changes.filter(among("member_id", member_ids)).values_list("member_id", flat=True)))
        return sync(changed) if changed else TagResult()
    changed = sorted(set(changes.values_list("member_id", flat=True)))
    if len(changed) > WHOLE_GROUP:
        return sync(None)
    result = sync(changed) if changed else TagResult()
    if _counts_agree(model, column, brand_id, group):
        return result
    whole = sync(None)
    return TagResult(added=result.added + whole.added, removed=result.removed + whole.removed)


def assign(kind: str, group: ModelGroup, values: dict[int, str | None], now: dt.datetime) -> TagResult:
    """Give each member of ``values`` the group's tag of their value (None: no tag of the group)."""
    return set_model_tags(group=group.group, assignments={m: group.tags[v] if v else None for m, v in values.items()},
                          actor=f"model:{kind}", now=now)


def _counts_agree(model, column: str, brand_id: int, group: ModelGroup) -> bool:
    """Whether the group's tags have as many holders each as the brand has rows of that value."""
    rows = dict(model.objects.filter(brand_id=brand_id).order_by().values_list(column).annotate(n=Count("*")))
    held = dict(MemberTag.objects.filter(tag_id__in=[t.pk for t in group.tags.values()]).order_by()
                .values_list("tag_id").annotate(n=Count("*")))
    return all(rows.get(value, 0) == held.get(tag.pk, 0) for value, tag in group.tags.items())
