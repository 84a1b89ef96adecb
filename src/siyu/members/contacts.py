"""WeCom contacts (企业微信好友): which staff member each member is a contact of, and since when.

Online rate, loss alerts (流失提醒) and guide ownership read this relation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from siyu.core.db import by_code, chunked
from siyu.core.ingest import IngestResult, run_batch
from siyu.core.rows import RowReader, unknown_reference
from siyu.members.identities import Ident, normalize
from siyu.members.models import (
    AddWay,
    ContactStatus,
    IdentityKind,
    Member,
    OwnershipChange,
    WeComContact,
)
from siyu.members.resolution import resolve_identities
from siyu.members.services import new_member_code
from siyu.org.models import Staff

#: WeCom's numeric ``add_way`` codes (external contact API) mapped onto ours.
WECOM_ADD_WAY = {"1": AddWay.SCAN, "2": AddWay.SEARCH, "9": AddWay.SEARCH, "3": AddWay.SHARE,
                 "4": AddWay.GROUP}
CONTACT_FIELDS = ("add_way", "state", "remark", "status", "status_changed_at")


@dataclass
class _ContactRow:
    row: int
    raw: Mapping[str, Any]
    staff_code: str
    identities: list[Ident]
    name: str
    values: dict[str, Any]


def _parse_contact(row: int, raw: Mapping[str, Any]) -> _ContactRow:
    reader = RowReader(raw)
    staff = reader.text("staff", required=True, max_length=64)
    external_userid = reader.text("external_userid", required=True, max_length=191)
    identities = [normalize(IdentityKind.WECOM, external_userid, field="external_userid")]
    unionid = reader.text("unionid", max_length=191)
    if unionid:
        identities.append(normalize(IdentityKind.UNIONID, unionid, field="unionid"))
    add_way = reader.text("add_way", max_length=10)
    if add_way and add_way not in AddWay.values:
        if not add_way.isdigit():
            reader.choice("add_way", AddWay)  # raises the precise error
        add_way = WECOM_ADD_WAY.get(add_way, AddWay.OTHER)
    added_at = reader.datetime("added_at") or timezone.now()
    status = reader.choice("status", ContactStatus, default=ContactStatus.ACTIVE)
    return _ContactRow(row, raw, staff, identities, reader.text("name", max_length=100), {
        "added_at": added_at,
        "add_way": add_way or AddWay.OTHER,
        "state": reader.text("state", max_length=64),
        "remark": reader.text("remark", max_length=100),
        "status": status,
        "status_changed_at": reader.datetime("status_changed_at") or added_at,
    })


def record_wecom_contacts(*, rows: Sequence[Mapping[str, Any]], source: str, first_row: int = 1,
        row_numbers: Sequence[int] | None = None) -> IngestResult:
    """Record WeCom contact relations (add, remark, delete by either side), batch-first.

    Key: (member resolved from ``external_userid``/``unionid``, ``staff`` code). A customer new
    to Siyu becomes a member owned by the staff member who added them; a member without an
    owning guide gets this one. A status change older than the stored one is ignored
    (callbacks can arrive out of order). Re-sending a row changes nothing. Maintains the
    member's ``is_wecom_friend`` flag. Rejects: missing staff/external_userid, unknown staff,
    unknown add_way/status, bad times.
    """
    return run_batch(entity="contact", rows=rows, parse=_parse_contact, source=source, first_row=first_row,
                     row_numbers=row_numbers,
                     apply=lambda parsed, result: _apply_contacts(parsed, result, source=source))


def _apply_contacts(parsed: list[_ContactRow], result: IngestResult, *, source: str) -> None:
    staff = by_code(Staff, (p.staff_code for p in parsed))
    rows = []
    for p in parsed:
        if p.staff_code in staff:
            rows.append(p)
        else:
            result.reject(p.row, unknown_reference("guide", p.staff_code), p.raw)
    if not rows:
        return

    def build(index: int) -> Member:
        row, owner = rows[index], staff[rows[index].staff_code]
        return Member(code=new_member_code(), name=row.name, joined_at=row.values["added_at"],
                      source_channel="wecom", guide=owner, store_id=owner.store_id)

    resolution = resolve_identities([r.identities for r in rows], new_member=build, source=source)
    member_ids = resolution.member_ids
    result.buyers.update(m for _i, m in resolution.new_identities)  # may have bound waiting orders
    existing = {
        (c.member_id, c.staff_id): c
        for c in WeComContact.objects.select_for_update().filter(
            member_id__in=set(member_ids), staff_id__in={s.pk for s in staff.values()})
    }
    new: dict[tuple[int, int], WeComContact] = {}
    changed: dict[int, WeComContact] = {}
    for row, member_id in zip(rows, member_ids, strict=True):
        key = (member_id, staff[row.staff_code].pk)
        contact = existing.get(key) or new.get(key)
        if contact is None:
            new[key] = WeComContact(member_id=member_id, staff_id=key[1], **row.values)
            result.created += 1
            result.members.add(member_id)
            result.accept(row.row, member_id)
            continue
        fields = _merge_contact(contact, row.values)
        if fields and contact.pk:
            changed[contact.pk] = contact
        if fields:
            result.updated += 1
            result.members.add(member_id)
        else:
            result.duplicates += 1
        result.accept(row.row, member_id)
    WeComContact.objects.bulk_create(list(new.values()), batch_size=1000)
    if changed:
        WeComContact.objects.bulk_update(list(changed.values()), [*CONTACT_FIELDS, "added_at"], batch_size=500)
    touched = sorted(set(member_ids))
    OwnershipChange.objects.bulk_create([
        OwnershipChange(member_id=m, to_guide=staff[r.staff_code], to_store_id=staff[r.staff_code].store_id,
                        reason="wecom_added", actor=source)
        for r, m, created in zip(rows, member_ids, resolution.created, strict=True) if created
    ])
    _assign_unowned(touched, rows, member_ids, staff, source=source)
    refresh_reachability(touched)


def _merge_contact(contact: WeComContact, values: dict[str, Any]) -> set[str]:
    fields = set()
    for name in ("add_way", "state", "remark"):
        if values[name] and getattr(contact, name) != values[name]:
            setattr(contact, name, values[name])
            fields.add(name)
    if values["added_at"] < contact.added_at:
        contact.added_at = values["added_at"]
        fields.add("added_at")
    if values["status"] != contact.status and values["status_changed_at"] >= contact.status_changed_at:
        contact.status = values["status"]
        contact.status_changed_at = values["status_changed_at"]
        fields.update({"status", "status_changed_at"})
    return fields


def _assign_unowned(member_ids, rows, row_members, staff, *, source: str) -> None:
    """A member without an owning guide belongs to the first staff member who added them."""
    unowned = set(Member.objects.filter(pk__in=member_ids, guide__isnull=True).values_list("pk", flat=True))
    by_owner: dict[Staff, list[int]] = defaultdict(list)
    for row, member_id in zip(rows, row_members, strict=True):
        if member_id in unowned and row.values["status"] == ContactStatus.ACTIVE:
            unowned.discard(member_id)
            by_owner[staff[row.staff_code]].append(member_id)
    now = timezone.now()
    for owner, members in by_owner.items():
        Member.objects.filter(pk__in=members).update(guide=owner, updated_at=now)
        Member.objects.filter(pk__in=members, store__isnull=True).update(store_id=owner.store_id)
    OwnershipChange.objects.bulk_create([
        OwnershipChange(member_id=m, to_guide=owner, to_store_id=owner.store_id, reason="wecom_added", actor=source)
        for owner, members in by_owner.items() for m in members
    ])


def refresh_reachability(member_ids: Sequence[int]) -> None:
    """``is_wecom_friend`` ⇔ the member is an active contact of at least one staff member."""
    active = WeComContact.objects.filter(member=OuterRef("pk"), status=ContactStatus.ACTIVE)
    for chunk in chunked(list(member_ids), 1000):
        Member.objects.filter(pk__in=chunk).update(is_wecom_friend=Exists(active))
