"""Demo lifecycle automation: message templates and two journeys an operations team runs.

- 新会员关怀: the 3/7/15/30-day, month 2/3/5 cadence after joining, by WeCom 1:1 message
  through the member's guide, ending early when the member places a first order. It goes live
  before the late sign-ups arrive, so the worker enrols them from the members table.
- 沉默复购客户召回: the saved segment of Shanghai repeat buyers gone quiet, entered by hand: the
  owning guide gets a call-back task, the member a WeCom message, and after a week those who
  ordered again are tagged 已召回.

No WeCom corp is configured in the demo, so messages the worker tries to deliver fail with the
reason "channel not configured" — exactly what an unconfigured installation shows.
"""

from __future__ import annotations

from django.utils import timezone

from siyu.journeys.engine import tick
from siyu.journeys.models import Journey
from siyu.journeys.services import CADENCE_DAYS, activate_journey, cadence_definition, create_journey, enrol_members
from siyu.messaging.models import Channel, MessageTemplate, Purpose
from siyu.segments.models import Segment
from siyu.segments.selectors import segment_members
from siyu.tags.models import TagCategory
from siyu.tags.services import save_tag, save_tag_group

ACTOR = "demo"

#: Day after joining → (template code, name, body).
CADENCE = {
    3: ("care-d3", "新客关怀·第3天",
        "{{ member_name }}您好，我是您的专属顾问{{ guide_name }}，衣服穿着还合适吗？有任何问题随时找我。"),
    7: ("care-d7", "新客关怀·第7天", "{{ member_name }}，送您一份搭配小贴士，本周到店还可以免费熨烫护理哦。"),
    15: ("care-d15", "新客关怀·第15天", "{{ member_name }}，您现在是{{ tier }}，积分 {{ points }}，下单即可抵扣。"),
    30: ("care-d30", "新客关怀·第30天", "{{ member_name }}，满月快乐！新品到店，给您留了试穿名额。"),
    60: ("care-m2", "新客关怀·第2个月", "{{ member_name }}，换季了，{{ guide_name }}为您挑了几件新款，回复即可看图。"),
    90: ("care-m3", "新客关怀·第3个月", "{{ member_name }}，季度会员日就在本周末，欢迎到店。"),
    150: ("care-m5", "新客关怀·第5个月", "{{ member_name }}，好久不见，{{ guide_name }}想听听您最近的穿搭需求。"),
}
RECALL_TEMPLATE = ("recall-quiet", "沉默客户召回",
                   "{{ member_name }}，好久没见您了！{{ guide_name }}给您留了一份老客专属礼，本月到店即可领取。")


def _template(code: str, name: str, body: str) -> MessageTemplate:
    template = MessageTemplate.objects.filter(code=code).first() or MessageTemplate(
        code=code, name=name, channel=Channel.WECOM, purpose=Purpose.MARKETING, body=body)
    template.full_clean()  # the same checks as the console's form: known variables only
    template.save()
    return template


def setup_journeys() -> Journey:
    """Templates and the new-member cadence, live (before the late sign-ups join)."""
    ids = {day: _template(*CADENCE[day]).pk for day in CADENCE_DAYS}
    journey = Journey.objects.filter(code="new-member-care").first() or create_journey(
        code="new-member-care", name="新会员关怀（3/7/15/30 天，2/3/5 个月）",
        description="入会后按节奏由专属导购企微触达；首单即达成目标。",
        definition={**cadence_definition(template_ids=ids, goal_days=30), "control_pct": 10,
                    "send_window": {"hours": [9, 21]}},
        actor=ACTOR)
    return activate_journey(journey=journey, actor=ACTOR)


def run_journeys() -> int:
    """The recall journey over the quiet-buyers segment, then one worker tick; returns the moves."""
    template = _template(*RECALL_TEMPLATE)
    outcomes = save_tag_group(code="journey-outcomes", name="旅程结果", category=TagCategory.SCENE)
    save_tag(code="recalled", group=outcomes, name="已召回")
    journey = Journey.objects.filter(code="quiet-buyer-recall").first() or create_journey(
        code="quiet-buyer-recall", name="沉默复购客户召回（上海）",
        description="导购电话回访 + 企微老客礼，一周后复购的打上“已召回”标签。",
        definition={
            "trigger": {"kind": "manual"},
            "reentry": {"policy": "period", "period_days": 90},
            "goal": {"kind": "order_placed", "within_days": 14},
            "control_pct": 10,
            "steps": [
                {"key": "call", "kind": "guide_task", "title": "电话回访：近 60 天未复购的老客", "due_days": 3,
                 "label": "导购回访任务"},
                {"key": "gift", "kind": "send", "template_id": template.pk, "label": "企微老客礼"},
                {"key": "week", "kind": "wait", "mode": "duration", "days": 7, "at": "10:00"},
                {"key": "back", "kind": "condition", "label": "一周内复购？",
                 "rule": {"orders": {"window": {"last_days": 7}}, "measure": "count", "op": "gte", "value": 1},
                 "yes": "tag", "no": "exit"},
                {"key": "tag", "kind": "tag_add", "tags": ["recalled"], "label": "标记已召回"},
            ],
        },
        actor=ACTOR)
    journey = activate_journey(journey=journey, actor=ACTOR)
    segment = Segment.objects.get(code="sh-quiet-buyers")
    members = list(segment_members(segment).order_by("pk").values_list("pk", flat=True)[:5000])
    if members:
        enrol_members(journey=journey, member_ids=members, entry_key="demo-recall", actor=ACTOR)
    return tick(now=timezone.now())
