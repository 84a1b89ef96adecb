"""Member center writes: batch upsert of members, WeCom contacts, owner changes, merges."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.db import by_code, ids_by
from siyu.core.ingest import Batch, IngestResult, run_batch, run_batches
from siyu.core.rows import RowError, RowReader, unknown_reference
from siyu.members.identities import Ident, row_identities
from siyu.members.models import (
    Gender,
    IdentityKind,
    Member,
    OwnershipChange,
)
from siyu.members.resolution import resolve_identities
from siyu.org.models import Staff, Store

_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U

GENDER_ALIASES = {
    "男": Gender.MALE, "女": Gender.FEMALE, "未知": Gender.UNKNOWN,
    "m": Gender.MALE, "f": Gender.FEMALE, "M": Gender.MALE, "F": Gender.FEMALE,
    "1": Gender.MALE, "2": Gender.FEMALE, "0": Gender.UNKNOWN,
}
PROFILE_FIELDS = ("name", "city", "community", "house_number", "occupation", "source_channel")
FLAG_FIELDS = ("in_group", "follows_oa", "mini_program_authorized", "sms_consent",
               "marketing_consent")


def new_member_code() -> str:
    return "M" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(11))


@dataclass
class _MemberRow:
    row: int
    raw: Mapping[str, Any]
    code: str
    identities: list[Ident]
    values: dict[str, Any]
    store_code: str
    guide_code: str


def _parse_member(row: int, raw: Mapping[str, Any]) -> _MemberRow:
    reader = RowReader(raw)
    code = reader.text("member_code", max_length=32) or reader.text("code", max_length=32)
    identities = row_identities(raw)
    if not identities and not code:
        raise RowError("identities", "no_identity",
                       _("a member needs a member code or at least one identity "
                         "(phone, unionid, openid, external_userid, nick, pos_card, email)"))
    values: dict[str, Any] = {}
    for name in PROFILE_FIELDS:
        text = reader.text(name, max_length=Member._meta.get_field(name).max_length)
        if text:
            values[name] = text
    gender = reader.choice("gender", Gender, aliases=GENDER_ALIASES)
    if gender:
        values["gender"] = gender
    birthday = reader.date("birthday")
    if birthday:
        if birthday > timezone.localdate() or birthday.year < 1900:
            raise RowError("birthday", "invalid_date", _("birthday out of range: %(v)s")
                           % {"v": birthday.isoformat()})
        values["birthday"] = birthday
    joined_at = reader.datetime("joined_at")
    if joined_at:
        values["joined_at"] = joined_at
    for name in FLAG_FIELDS:
        flag = reader.boolean(name)
        if flag is not None:
            values[name] = flag
    phones = [i.value for i in identities if i.kind == IdentityKind.PHONE]
    if phones:
        values["phone"] = phones[0]
    emails = [i.value for i in identities if i.kind == IdentityKind.EMAIL]
    if emails:
        values["email"] = emails[0]
    return _MemberRow(row, raw, code, identities, values,
                      reader.text("store", max_length=50), reader.text("guide", max_length=64))


def upsert_members(*, rows: Sequence[Mapping[str, Any]], source: str, actor: str = "",
                   first_row: int = 1,
        row_numbers: Sequence[int] | None = None) -> IngestResult:
    """Create or update members from raw rows, resolving identities (batch-first).

    A row is matched by ``member_code`` or any identity (phone strongest); unknown identities
    are linked to the matched member, and a row whose identities point at two members is
    resolved to the strongest one and flagged as a merge candidate. Only fields present in a
    row are written. Re-sending a row changes nothing (counted as a duplicate).

    Rejects (kept in the rejection table, the rest of the batch lands): no identity, malformed
    phone/email/date, unknown gender value, unknown store or guide code.
    """
    return run_batch(entity="member", rows=rows, parse=_parse_member, source=source, first_row=first_row,
                     row_numbers=row_numbers,
                     apply=lambda parsed, result: _apply_members(parsed, result, source=source, actor=actor))


def upsert_member_batches(*, batches: Iterable[Sequence[Mapping[str, Any]] | Batch], source: str,
                          actor: str = "") -> Iterator[IngestResult]:
    """:func:`upsert_members` over a stream of batches, one result per batch as each commits
    (see :func:`~siyu.core.ingest.run_batches`)."""
    return run_batches(entity="member", batches=batches, parse=_parse_member, source=source,
                       apply=lambda parsed, result: _apply_members(parsed, result, source=source, actor=actor))


def _apply_members(parsed: list[_MemberRow], result: IngestResult, *, source: str, actor: str) -> None:
    stores = by_code(Store, (p.store_code for p in parsed))
    guides = by_code(Staff, (p.guide_code for p in parsed))
    rows: list[_MemberRow] = []
    for p in parsed:
        if p.store_code and p.store_code not in stores:
            result.reject(p.row, unknown_reference("store", p.store_code), p.raw)
        elif p.guide_code and p.guide_code not in guides:
            result.reject(p.row, unknown_reference("guide", p.guide_code), p.raw)
        else:
            rows.append(p)
    if not rows:
        return
    now = timezone.now()
    known_codes = ids_by(Member, "code", (r.code for r in rows))

    def owner(row: _MemberRow) -> tuple[Staff | None, Store | None]:
        guide = guides.get(row.guide_code)
        store = stores.get(row.store_code) or (guide.store if guide and guide.store_id else None)
        return guide, store

    def build(index: int) -> Member:
        row = rows[index]
        guide, store = owner(row)
        return Member(code=row.code or new_member_code(), guide=guide, store=store,
                      **{"joined_at": now, **row.values})

    resolution = resolve_identities(
        [r.identities for r in rows], new_member=build, source=source,
        anchors=[known_codes.get(r.code) for r in rows],
    )
    member_ids = resolution.member_ids
    linked = {member_id for _, member_id in resolution.new_identities}
    result.buyers.update(linked)  # a new identity may have bound orders waiting for it
    members = Member.objects.select_for_update().in_bulk(sorted(set(member_ids)))
    changed: dict[int, set[str]] = {}
    owner_changes: list[OwnershipChange] = []
    for index, row in enumerate(rows):
        member = members[member_ids[index]]
        created = resolution.created[index]
        old_guide, old_store = member.guide_id, member.store_id
        fields = set() if created else _apply_values(member, row.values)
        guide, store = owner(row)
        if guide and member.guide_id != guide.pk:
            member.guide_id = guide.pk
            fields.add("guide_id")
        if store and member.store_id != store.pk:
            member.store_id = store.pk
            fields.add("store_id")
        if {"guide_id", "store_id"} & fields or (created and (member.guide_id or member.store_id)):
            owner_changes.append(OwnershipChange(
                member_id=member.pk, from_guide_id=None if created else old_guide,
                to_guide_id=member.guide_id, from_store_id=None if created else old_store,
                to_store_id=member.store_id, reason="joined" if created else "updated",
                actor=actor or source,
            ))
        if fields:
            changed.setdefault(member.pk, set()).update(fields)
        if created or fields or member.pk in linked:
            result.members.add(member.pk)
        if created:
            result.created += 1
        elif fields or member.pk in linked:
            result.updated += 1
        else:
            result.duplicates += 1
        result.accept(row.row, member.pk)
    if changed:
        for pk in changed:
            members[pk].updated_at = now
        Member.objects.bulk_update(
            [members[pk] for pk in sorted(changed)],
            sorted(set().union(*changed.values()) | {"updated_at"}), batch_size=500,
        )
    OwnershipChange.objects.bulk_create(owner_changes, batch_size=1000)


def _apply_values(member: Member, values: Mapping[str, Any]) -> set[str]:
    """Write the row's values onto ``member``; returns the fields that changed."""
    fields = set()
    for name, value in values.items():
        if name == "joined_at":
            if value < member.joined_at:
                member.joined_at = value
                fields.add(name)
        elif name == "phone" and member.phone:
            continue  # the primary phone changes only explicitly, not by another identity
        elif getattr(member, name) != value:
            setattr(member, name, value)
            fields.add(name)
    return fields
