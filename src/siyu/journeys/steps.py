"""What each kind of step does to a batch of enrolments at once.

A handler takes the enrolments standing at one step of one version (all locked by the tick) and
answers, for each, either :class:`Stay` (come back at ``due_at``: a wait not over, a send window
not open) or :class:`Move` (log the outcome, go on to ``next``). Actions derive their
idempotency keys from ``(enrolment, step)``; the tick writes the step log row in the same
transaction, and that row's unique key is the final guard against running a step twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from siyu.core.db import among, by_code
from siyu.core.errors import SiyuError
from siyu.journeys.definition import END
from siyu.journeys.models import StepOutcome
from siyu.journeys.timing import bucket, combine, next_opening, wait_until

#: Longest detail kept in the step log.
DETAIL = 200


@dataclass
class Item:
    """An enrolment as the tick holds it while moving it."""

    pk: int
    journey_id: int
    version_id: int
    member_id: int
    step: str
    due_at: dt.datetime
    step_since: dt.datetime
    anchor_at: dt.datetime


@dataclass
class Stay:
    item: Item
    due_at: dt.datetime


@dataclass
class Move:
    item: Item
    outcome: str
    next: str
    at: dt.datetime  # the step's logical time: when the next step starts
    detail: str = ""
    message_id: int | None = None


@dataclass
class Context:
    journey_id: int
    journey_code: str
    version_id: int
    version_number: int
    definition: dict
    now: dt.datetime
    steps: dict = field(default_factory=dict)


def run_step(step: dict, items: list[Item], ctx: Context) -> list[Stay | Move]:
    kind = step["kind"]
    if kind == "wait":
        return _wait(step, items, ctx)
    if kind == "condition":
        matched = _matching(step["rule"], items, ctx.now)
        return [Move(i, StepOutcome.YES, step["yes"], i.due_at) if i.member_id in matched
                else Move(i, StepOutcome.NO, step["no"], i.due_at) for i in items]
    if kind == "split":
        return [_variant(step, i, ctx) for i in items]
    if kind == "exit":
        return [Move(i, StepOutcome.EXITED, END, i.due_at) for i in items]
    windows = combine(ctx.definition.get("send_window"), step.get("window"))
    ready, moves = [], []
    for item in items:
        opening = next_opening(windows, max(item.due_at, ctx.now) if windows else item.due_at)
        if opening > ctx.now:
            moves.append(Stay(item, opening))
        else:
            ready.append(item)
    if ready:
        moves.extend(_act(step, ready, ctx))
    return moves


def _wait(step: dict, items: list[Item], ctx: Context) -> list[Stay | Move]:
    if step["mode"] != "condition":
        out = []
        for item in items:
            end = wait_until(step, since=item.step_since, anchor=item.anchor_at)
            out.append(Move(item, StepOutcome.WAITED, step["next"], end) if end <= ctx.now else Stay(item, end))
        return out
    matched = _matching(step["rule"], items, ctx.now)
    out = []
    for item in items:
        timeout = item.step_since + dt.timedelta(hours=step["timeout_hours"])
        if item.member_id in matched:
            out.append(Move(item, StepOutcome.WAITED, step["next"], ctx.now))
        elif timeout <= ctx.now:
            out.append(Move(item, StepOutcome.TIMED_OUT, step["timeout_next"], timeout))
        else:
            out.append(Stay(item, min(timeout, ctx.now + dt.timedelta(minutes=step["check_minutes"]))))
    return out


def _matching(rule, items: list[Item], now: dt.datetime) -> set[int]:
    from siyu.segments.selectors import rule_members

    ids = [i.member_id for i in items]
    return set(rule_members(rule, now=now).filter(among("pk", ids)).values_list("pk", flat=True))


def _variant(step: dict, item: Item, ctx: Context) -> Move:
    slot = bucket(f"journey:{ctx.journey_id}:{step['key']}", item.member_id)
    edge = 0
    for variant in step["variants"]:
        edge += variant["percent"]
        if slot < edge:
            return Move(item, StepOutcome.VARIANT, variant["next"], item.due_at, detail=variant["name"])
    last = step["variants"][-1]
    return Move(item, StepOutcome.VARIANT, last["next"], item.due_at, detail=last["name"])


def _act(step: dict, items: list[Item], ctx: Context) -> list[Move]:
    """Run an action for ``items``; a domain error (an inactive coupon template, an unknown tag)
    skips the action for the batch with the error's code rather than stalling the journey."""
    handler = ACTIONS[step["kind"]]
    try:
        with transaction.atomic():
            return handler(step, items, ctx)
    except SiyuError as exc:
        detail = f"{exc.code}: {exc.message}"[:DETAIL]
        return [Move(i, StepOutcome.SKIPPED, step["next"], i.due_at, detail=detail) for i in items]


def dedupe_key(ctx: Context, item: Item, step: dict) -> str:
    return f"journey:{ctx.journey_id}:e{item.pk}:{step['key']}"


def _send(step: dict, items: list[Item], ctx: Context) -> list[Move]:
    from siyu.messaging.services import Outgoing, enqueue

    source = f"journey:{ctx.journey_id}:v{ctx.version_number}:step:{step['key']}"[:100]
    messages = [Outgoing(member_id=i.member_id, template_id=step["template_id"], dedupe_key=dedupe_key(ctx, i, step),
                         purpose=step["purpose"], context=step["context"], source=source) for i in items]
    result = enqueue(messages=messages, now=ctx.now)
    moves = []
    for item, message in zip(items, messages, strict=True):
        done = result[message.dedupe_key]
        if done.status == "suppressed" or done.id is None:
            moves.append(Move(item, StepOutcome.SUPPRESSED, step["next"], item.due_at,
                              detail=done.reason or done.status, message_id=done.id))
        else:
            moves.append(Move(item, StepOutcome.SENT, step["next"], item.due_at, message_id=done.id))
    return moves


def _coupon(step: dict, items: list[Item], ctx: Context) -> list[Move]:
    from siyu.loyalty.coupon_models import CouponTemplate
    from siyu.loyalty.coupons import issue_to_members

    template = by_code(CouponTemplate, [step["template"]]).get(step["template"])
    if template is None:
        raise SiyuError(_("no coupon template %(code)s") % {"code": step["template"]}, code="unknown_template")
    # One issue run per (step, batch): the batch's enrolments are locked and logged in the same
    # transaction, so a re-run batch is a different set only if this one rolled back entirely.
    first, last = items[0].pk, items[-1].pk
    key = f"journey:{ctx.journey_id}:{step['key']}:{first}-{last}:{len(items)}"
    result = issue_to_members(template=template, member_ids=[i.member_id for i in items], idempotency_key=key,
                              now=ctx.now, actor=f"journey:{ctx.journey_code}"[:100])
    skipped = dict(result.skipped_members)
    return [Move(i, StepOutcome.SKIPPED, step["next"], i.due_at, detail=skipped[i.member_id])
            if i.member_id in skipped else Move(i, StepOutcome.DONE, step["next"], i.due_at, detail=template.code)
            for i in items]


def _tags(step: dict, items: list[Item], ctx: Context) -> list[Move]:
    from siyu.tags.models import Tag
    from siyu.tags.services import apply_tags, remove_tags

    tags = list(by_code(Tag, step["tags"]).values())
    missing = sorted(set(step["tags"]) - {t.code for t in tags})
    if missing:
        raise SiyuError(_("no tag %(code)s") % {"code": missing[0]}, code="unknown_tag")
    ids = [i.member_id for i in items]
    actor = f"journey:{ctx.journey_code}"[:100]
    if step["kind"] == "tag_add":
        apply_tags(member_ids=ids, tags=tags, source="scene", actor=actor, now=ctx.now)
    else:
        remove_tags(member_ids=ids, tags=tags, source="scene", actor=actor, now=ctx.now)
    return [Move(i, StepOutcome.DONE, step["next"], i.due_at, detail=",".join(step["tags"])[:DETAIL]) for i in items]


def _points(step: dict, items: list[Item], ctx: Context) -> list[Move]:
    from siyu.loyalty.ledger import Posting, existing_keys, lock_accounts, post
    from siyu.loyalty.models import LoyaltyProgram
    from siyu.loyalty.programs import business_date, lot_expiry

    program = by_code(LoyaltyProgram, [step["program"]]).get(step["program"])
    if program is None:
        raise SiyuError(_("no loyalty program %(code)s") % {"code": step["program"]}, code="unknown_program")
    accounts = lock_accounts((program.pk, i.member_id) for i in items)
    day, expires = business_date(program, ctx.now), lot_expiry(program, ctx.now)
    postings = [Posting(account_id=accounts[(program.pk, i.member_id)].pk, kind="adjust", amount=step["amount"],
                        key=f"journey:{ctx.journey_id}:e{i.pk}:{step['key']}", reason=step["reason"],
                        source_type="system", source_id=f"journey:{ctx.journey_id}", occurred_at=ctx.now,
                        business_date=day, expires_at=expires, actor=f"journey:{ctx.journey_code}"[:100])
                for i in items]
    by_id = {a.pk: a for a in accounts.values()}
    post(postings, by_id, now=ctx.now, existing=existing_keys((program.pk, p.key) for p in postings))
    return [Move(i, StepOutcome.DONE, step["next"], i.due_at, detail=f"+{step['amount']} {program.code}")
            for i in items]


def _guide_task(step: dict, items: list[Item], ctx: Context) -> list[Move]:
    from siyu.journeys.models import GuideTask
    from siyu.members.models import Member

    guides = dict(Member.objects.filter(among("pk", [i.member_id for i in items])).values_list("pk", "guide_id"))
    due = ctx.now + dt.timedelta(days=step["due_days"])
    GuideTask.objects.bulk_create([GuideTask(guide_id=guides[i.member_id], member_id=i.member_id,
                                             enrolment_id=i.pk, step=step["key"], title=step["title"], due_at=due,
                                             created_at=ctx.now) for i in items if guides.get(i.member_id)],
                                  ignore_conflicts=True)
    return [Move(i, StepOutcome.DONE if guides.get(i.member_id) else StepOutcome.SKIPPED, step["next"], i.due_at,
                 detail="" if guides.get(i.member_id) else "no_guide") for i in items]


ACTIONS = {"send": _send, "webhook": _send, "coupon": _coupon, "tag_add": _tags, "tag_remove": _tags,
           "points": _points, "guide_task": _guide_task}
