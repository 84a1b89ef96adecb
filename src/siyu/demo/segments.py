"""Demo tags and segments: what an operations team sets up in its first week.

Rule tags (复购客户, 高客单, 母婴人群), manual tags a few guides gave their customers, three saved
segments — the "Shanghai buyers gone quiet" example of docs/segments.md among them, one with
membership history — and then the nightly run, so RFM classes, lifecycle stages, rule tags and
segment sizes are all there when the console opens.
"""

from __future__ import annotations

import random

from django.utils import timezone

from siyu.core.nightly import run_nightly
from siyu.demo.org import APPAREL, BABY
from siyu.members.models import Member
from siyu.segments.services import refresh_memberships, save_segment
from siyu.tags.models import TagCategory
from siyu.tags.services import apply_tags, save_tag, save_tag_group

SOURCE = "demo"

#: (code, name, category, exclusive)
GROUPS = [
    ("consumption", "消费特征", TagCategory.CONSUMPTION, False),
    ("guide-notes", "导购标注", TagCategory.PERSONAL, False),
]
#: (group, code, name, rule or None for a manual tag)
TAGS = [
    ("consumption", "repeat-buyer", "复购客户",
     {"orders": {"window": {"last_days": 180}}, "measure": "count", "op": "gte", "value": 2}),
    ("consumption", "high-aov", "高客单",
     {"orders": {"window": {"last_days": 365}}, "measure": "aov", "op": "gte", "value": "600"}),
    ("consumption", "mother-baby", "母婴人群",
     {"orders": {"window": {"last_days": 365}, "brands": [BABY]}, "measure": "count", "op": "gte", "value": 1}),
    ("guide-notes", "sensitive-skin", "敏感肌", None),
    ("guide-notes", "likes-silk", "偏好真丝", None),
    ("guide-notes", "vip-invite", "邀约到店", None),
]
#: (code, name, rule, track membership)
SEGMENTS = [
    ("sh-quiet-buyers", "上海复购但近60天未购的企微好友", {"all": [
        {"attr": "city", "op": "eq", "value": "上海"},
        {"orders": {"window": {"last_days": 180}}, "measure": "count", "op": "gte", "value": 2},
        {"not": {"orders": {"window": {"last_days": 60}}, "measure": "count", "op": "gte", "value": 1}},
        {"attr": "is_wecom_friend", "op": "eq", "value": True},
    ]}, True),
    ("baby-silent", "母婴沉默客户（定向发券）", {"all": [
        {"tags": "any", "value": ["mother-baby"]},
        {"model": "lifecycle", "brand": BABY, "op": "in", "value": ["silent", "churned"]},
    ]}, False),
    ("wear-important", "悦衣重要价值与重要保持客户", {"model": "rfm_class", "brand": APPAREL, "op": "in",
                                                      "value": ["important_value", "important_keep"]}, False),
]
#: Share of members with a guide who got a manual note from them.
NOTED_SHARE = 0.04


def setup_segments(rng: random.Random) -> None:
    """Create the demo tags and segments, note some customers, then run the nightly recomputes."""
    groups = {code: save_tag_group(code=code, name=name, category=category, exclusive=exclusive)
              for code, name, category, exclusive in GROUPS}
    manual = []
    for group, code, name, rule in TAGS:
        tag = save_tag(code=code, group=groups[group], name=name, rule=rule)
        if rule is None:
            manual.append(tag)
    guided = list(Member.objects.filter(guide__isnull=False).order_by("pk").values_list("pk", "guide__code"))
    for tag in manual:
        noted = [(pk, guide) for pk, guide in guided if rng.random() < NOTED_SHARE]
        by_guide: dict[str, list[int]] = {}
        for pk, guide in noted:
            by_guide.setdefault(guide, []).append(pk)
        for guide, ids in sorted(by_guide.items()):
            apply_tags(member_ids=ids, tags=[tag], source="manual", actor=f"guide:{guide}")
    run_nightly(now=timezone.now())  # RFM, lifecycle and the rule tags the segments read
    for code, name, rule, track in SEGMENTS:
        save_segment(code=code, name=name, rule=rule, track_membership=track)
    refresh_memberships(now=timezone.now())  # who is in the tracked segment from today
