"""Generate the demo dataset through the ingestion services, deterministically from a seed.

Phases: organisation (ORM, demo-only) → members (``upsert_members``) → WeCom contacts of the
guides (``record_wecom_contacts``) → orders (``record_orders``, buyers named by identity) → late
sign-ups of marketplace buyers (their earlier orders bind) → behaviour events (``record_events``)
→ tags and segments, then the nightly recomputes (RFM, lifecycle, rule tags).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from siyu.commerce.models import Order, OrderLine, Refund
from siyu.commerce.services import record_order_batches, record_orders
from siyu.demo.automation import run_journeys, setup_journeys
from siyu.demo.calendar import Calendar
from siyu.demo.events import Events
from siyu.demo.loyalty import setup_loyalty
from siyu.demo.orders import Orders
from siyu.demo.org import setup_org
from siyu.demo.people import People
from siyu.demo.segments import setup_segments
from siyu.events.models import Event
from siyu.events.services import record_events
from siyu.members.contacts import record_wecom_contacts
from siyu.members.models import Identity, Member, WeComContact
from siyu.members.services import upsert_members
from siyu.org.models import Staff, Store

SOURCE = "demo"
MEMBER_BATCH = 1000
ORDER_BATCH = 1000
EVENT_BATCH = 2000
GUESTS_PER_MEMBER = 0.2
GUEST_SIGN_UP_RATE = 0.08

#: ``progress(phase, advance, total)``: ``total`` is given once per phase, before any advance.
Progress = Callable[[str, int, int | None], None]


@dataclass
class Summary:
    seed: int
    stores: int = 0
    staff: int = 0
    members: int = 0
    identities: int = 0
    wecom_contacts: int = 0
    orders: int = 0
    order_lines: int = 0
    refunds: int = 0
    unbound_orders: int = 0
    events: int = 0
    rejected: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    rejections: list = field(default_factory=list)

    def count(self) -> Summary:
        self.stores = Store.objects.count()
        self.staff = Staff.objects.count()
        self.members = Member.objects.count()
        self.identities = Identity.objects.count()
        self.wecom_contacts = WeComContact.objects.count()
        self.orders = Order.objects.count()
        self.order_lines = OrderLine.objects.count()
        self.refunds = Refund.objects.count()
        self.unbound_orders = Order.objects.filter(member__isnull=True).count()
        self.events = Event.objects.count()
        return self


def _quiet(phase: str, advance: int, total: int | None) -> None:
    return None


def _ingest(service, rows: list[dict], *, batch: int, phase: str, progress: Progress,
            summary: Summary) -> None:
    """``rows`` through ``service`` a batch at a time; orders go as a stream (record_order_batches)."""
    chunks = [rows[start:start + batch] for start in range(0, len(rows), batch)]
    if service is record_orders:
        results = record_order_batches(batches=chunks, source=SOURCE)
    else:
        results = (service(rows=chunk, source=SOURCE, first_row=start + 1)
                   for start, chunk in zip(range(0, len(rows), batch), chunks, strict=True))
    for chunk, result in zip(chunks, results, strict=True):
        if result.rejected:
            summary.rejected += len(result.rejected)
            summary.rejections.extend(result.rejected[:5])
        progress(phase, len(chunk), None)


def generate(*, seed: int = 42, members: int = 20_000, progress: Progress = _quiet) -> Summary:
    """Generate ``members`` members with their orders and events; returns what exists after."""
    rng = random.Random(seed)
    summary = Summary(seed=seed)
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        summary.seconds[phase] = round(now - clock, 2)
        clock = now

    progress("org", 0, 1)
    org = setup_org(rng)
    setup_loyalty()  # before the orders: they earn points as they arrive
    calendar = Calendar()
    progress("org", 1, None)
    lap("org")

    people = People(rng, org, calendar)
    guests = [people.guest() for _ in range(int(members * GUESTS_PER_MEMBER))]
    late = [g for g in guests if rng.random() < GUEST_SIGN_UP_RATE][: max(members // 10, 0)]
    personas = [people.member() for _ in range(members - len(late))]
    rows = [p.row for p in personas]
    progress("members", 0, len(rows))
    _ingest(upsert_members, rows, batch=MEMBER_BATCH, phase="members", progress=progress, summary=summary)
    lap("members")

    contacts = [c for c in (people.contact(p) for p in personas) if c]
    progress("contacts", 0, len(contacts))
    _ingest(record_wecom_contacts, contacts, batch=MEMBER_BATCH, phase="contacts", progress=progress,
            summary=summary)
    lap("contacts")

    maker = Orders(rng, org, calendar)
    orders = [o for p in personas for o in maker.for_persona(p)]
    orders += [o for g in guests for o in maker.for_guest(g)]
    orders.sort(key=lambda o: (o[0], o[1]))  # they arrive in time order
    order_rows = [row for _at, _seq, row in orders]
    progress("orders", 0, len(order_rows))
    _ingest(record_orders, order_rows, batch=ORDER_BATCH, phase="orders", progress=progress, summary=summary)
    lap("orders")

    progress("journeys", 0, 1)
    setup_journeys()  # live before the late sign-ups join: the worker enrols them
    progress("journeys", 1, None)
    lap("journeys")

    sign_ups = [people.sign_up(g) for g in late]
    progress("sign_ups", 0, len(sign_ups))
    _ingest(upsert_members, sign_ups, batch=MEMBER_BATCH, phase="sign_ups", progress=progress, summary=summary)
    lap("sign_ups")

    maker_events = Events(rng, org, calendar)
    events = [e for p in personas for e in maker_events.for_persona(p)]
    events.sort(key=lambda e: (e[0], e[1]["idempotency_key"]))
    event_rows = [row for _at, row in events]
    progress("events", 0, len(event_rows))
    _ingest(record_events, event_rows, batch=EVENT_BATCH, phase="events", progress=progress, summary=summary)
    lap("events")

    progress("segments", 0, 1)
    setup_segments(rng)
    progress("segments", 1, None)
    lap("segments")

    progress("automation", 0, 1)
    run_journeys()
    progress("automation", 1, None)
    lap("automation")
    return summary.count()


def has_members() -> bool:
    return Member.objects.exists()
