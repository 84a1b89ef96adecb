"""The touched-members path and the full pass agree (rows, history, model tags and their history),
and both match a plain-Python reference."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.analytics import services
from siyu.analytics.models import MemberLifecycle, MemberRfm, ModelChange, RfmMethod, RfmSettings
from siyu.analytics.services import recompute_models
from siyu.commerce.models import Order
from siyu.tags.models import MemberTag, MemberTagChange
from tests.analytics.conftest import NOW, brand_channel
from tests.factories import make_member

MEMBERS = 6
THRESHOLDS = {"recency_days": [10, 40, 100, 200], "frequency": [2, 3, 4, 6],
              "monetary": ["50.00", "200.00", "400.00", "800.00"]}

order = st.fixed_dictionaries({
    "member": st.integers(0, MEMBERS - 1),
    "brand": st.sampled_from(["pa", "pb"]),
    "hours_ago": st.integers(-48, 450 * 24),
    "paid": st.decimals(min_value=0, max_value=500, places=2),
    "refund_pct": st.sampled_from([0, 0, 0, 30, 100]),
    "counted": st.sampled_from([True, True, True, False]),
})
brand_b = st.fixed_dictionaries({
    "method": st.sampled_from([RfmMethod.QUANTILES, RfmMethod.THRESHOLDS]),
    "window_days": st.sampled_from([90, 365]),
    "new_days": st.sampled_from([0, 15, 30]),
    "silent_days": st.sampled_from([20, 60]),
    "churned_days": st.sampled_from([100, 150]),
})


def _days(later: dt.datetime, earlier: dt.datetime) -> int:
    return int((later - earlier).total_seconds() // 86400)


def _ntile(keys: dict[int, tuple]) -> dict[int, int]:
    ordered = sorted(keys, key=lambda m: keys[m])
    per, extra = divmod(len(ordered), 5)
    tiles, position = {}, 0
    for tile in range(1, 6):
        for member in ordered[position:position + per + (tile <= extra)]:
            tiles[member] = tile
        position += per + (tile <= extra)
    return tiles


def _threshold(value, cuts, *, lower_is_better: bool) -> int:
    if lower_is_better:
        return next((5 - i for i, c in enumerate(cuts) if value <= c), 1)
    return next((5 - i for i, c in enumerate(reversed(cuts)) if value >= Decimal(str(c))), 1)


CLASSES = {(1, 1, 1): "important_value", (1, 0, 1): "important_develop", (0, 1, 1): "important_keep",
           (0, 0, 1): "important_retain", (1, 1, 0): "general_value", (1, 0, 0): "general_develop",
           (0, 1, 0): "general_keep", (0, 0, 0): "general_retain"}


def reference(orders: list[Order], brand_settings: dict[int, RfmSettings]) -> tuple[dict, dict]:
    """RFM rows and lifecycle stages computed in Python from the order rows."""
    rfm, stages = {}, {}
    for brand_id, cfg in brand_settings.items():
        mine = [o for o in orders if o.store.brand_id == brand_id and o.is_counted and o.ordered_at <= NOW]
        by_member = defaultdict(list)
        for o in mine:
            by_member[o.member_id].append(o)
        values = {}
        for member, its in by_member.items():
            window = [o for o in its if o.ordered_at >= NOW - dt.timedelta(days=cfg.window_days)]
            if window:
                values[member] = (_days(NOW, max(o.ordered_at for o in window)), len(window),
                                  sum((o.paid_amount - o.refunded_amount for o in window), Decimal(0)))
            times = sorted(o.ordered_at for o in its)
            last, first = times[-1], times[0]
            before = [t for t in times if t < last]
            d, f = _days(NOW, last), _days(NOW, first)
            if f <= cfg.new_days:
                stage = "new"
            elif d > cfg.churned_days:
                stage = "churned"
            elif d > cfg.silent_days:
                stage = "silent"
            elif before and _days(last, before[-1]) > cfg.churned_days:
                stage = "recalled"
            else:
                stage = "active"
            stages[(member, brand_id)] = stage
        if cfg.method == RfmMethod.QUANTILES:
            r = _ntile({m: (-v[0], m) for m, v in values.items()})
            f_ = _ntile({m: (v[1], m) for m, v in values.items()})
            m_ = _ntile({m: (v[2], m) for m, v in values.items()})
            scores = {m: (r[m], f_[m], m_[m]) for m in values}
        else:
            scores = {m: (_threshold(v[0], cfg.recency_days, lower_is_better=True),
                          _threshold(v[1], cfg.frequency, lower_is_better=False),
                          _threshold(v[2], cfg.monetary, lower_is_better=False)) for m, v in values.items()}
        for m, v in values.items():
            s = scores[m]
            rfm[(m, brand_id)] = (*v, *s, CLASSES[tuple(int(x >= 3) for x in s)])
    return rfm, stages


def snapshot(member_ids=None) -> tuple[dict, dict, Counter, dict, Counter]:
    """Rows, history, model tags and their history (of ``member_ids``, or everyone's)."""
    rfm_rows = MemberRfm.objects.all()
    life_rows = MemberLifecycle.objects.all()
    history = ModelChange.objects.all()
    tags = MemberTag.objects.filter(source="model")
    tag_history = MemberTagChange.objects.filter(source="model")
    if member_ids is not None:
        rfm_rows, life_rows, history, tags, tag_history = (
            qs.filter(member_id__in=member_ids) for qs in (rfm_rows, life_rows, history, tags, tag_history))
    rfm = {(r.member_id, r.brand_id): (r.recency_days_at(NOW), r.frequency, r.monetary, r.r_score, r.f_score,
                                       r.m_score, r.rfm_class) for r in rfm_rows}
    life = {(r.member_id, r.brand_id): (r.stage, r.since) for r in life_rows}
    changes = Counter(history.values_list("member_id", "brand_id", "kind", "old_value", "new_value", "at"))
    held = {}
    for member_id, group, tag in tags.values_list("member_id", "tag__group__code", "tag__code"):
        assert (member_id, group) not in held, "two tags of an exclusive group"
        held[(member_id, group)] = tag
    tag_changes = Counter(tag_history.values_list("member_id", "tag__code", "action", "at"))
    return rfm, life, changes, held, tag_changes


def run_and_undo(**kwargs) -> tuple[dict, dict, Counter, dict, Counter]:
    point = transaction.savepoint()
    recompute_models(now=NOW, **kwargs)
    seen = snapshot(kwargs.get("member_ids"))
    transaction.savepoint_rollback(point)
    return seen


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=st.lists(order, max_size=24), config=brand_b, earlier=st.sampled_from([None, 3, 40]),
       subset=st.sets(st.integers(0, MEMBERS - 1), max_size=3))
def test_touched_members_get_exactly_what_a_full_pass_gives(orders, config, earlier, subset):
    with transaction.atomic():
        channels = {code: brand_channel(code) for code in ("pa", "pb")}
        RfmSettings.objects.create(brand=channels["pb"].store.brand,
                                   **{**config, **(THRESHOLDS if config["method"] == RfmMethod.THRESHOLDS else {})})
        members = [make_member() for _ in range(MEMBERS)]
        for i, spec in enumerate(orders):
            refunded = (spec["paid"] * spec["refund_pct"] / 100).quantize(Decimal("0.01"))
            channel = channels[spec["brand"]]
            Order.objects.create(channel=channel, external_id=f"P{i}", member=members[spec["member"]],
                                 store=channel.store, paid_amount=spec["paid"], refunded_amount=refunded,
                                 is_counted=spec["counted"], ordered_at=NOW - dt.timedelta(hours=spec["hours_ago"]))
        if earlier is not None:  # a state left by an earlier run, which both paths start from
            recompute_models(now=NOW - dt.timedelta(days=earlier))

        full = run_and_undo()
        with mock.patch.object(services, "CHUNK", 2):
            touched = run_and_undo(member_ids=[m.pk for m in members])
        some = [members[i].pk for i in subset]
        touched_some = run_and_undo(member_ids=some)

        assert touched == full
        assert touched_some == tuple(
            {k: v for k, v in part.items() if k[0] in some} if isinstance(part, dict)
            else Counter({k: n for k, n in part.items() if k[0] in some})
            for part in full)
        brand_settings = {c.store.brand_id: RfmSettings.objects.filter(brand_id=c.store.brand_id).first()
                          or RfmSettings(brand_id=c.store.brand_id) for c in channels.values()}
        expected_rfm, expected_stages = reference(list(Order.objects.select_related("store")), brand_settings)
        assert full[0] == expected_rfm
        assert {k: v[0] for k, v in full[1].items()} == expected_stages
        code = {c.store.brand_id: c.store.brand.code for c in channels.values()}  # each holds its class and stage
        assert full[3] == {
            **{(m, f"rfm-{code[b]}"): f"rfm-{code[b]}-{row[-1].replace('_', '-')}" for (m, b), row in full[0].items()},
            **{(m, f"lifecycle-{code[b]}"): f"lifecycle-{code[b]}-{s}" for (m, b), s in expected_stages.items()},
        }
        transaction.set_rollback(True)
