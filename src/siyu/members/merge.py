"""Merging two members (会员合并): everything moves to the survivor, nothing is lost."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.audit import audit
from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.members.models import (
    ContactStatus,
    Member,
    MemberStatus,
    MergeCandidate,
    MergeRecord,
    MergeStatus,
    WeComContact,
)

FILLABLE = ("name", "gender", "birthday", "phone", "email", "city", "community", "house_number",
            "occupation", "source_channel", "store_id", "guide_id")
FLAGS = ("is_wecom_friend", "in_group", "follows_oa", "mini_program_authorized", "sms_consent",
         "marketing_consent")
#: Relations handled explicitly below rather than by the generic move.
_SPECIAL = {(Member, "merged_into"), (MergeCandidate, "member"), (MergeCandidate, "other"),
            (MergeRecord, "survivor"), (MergeRecord, "merged"), (WeComContact, "member")}


def merge_members(*, survivor_id: int, merged_id: int, actor: str, user=None) -> MergeRecord:
    """Merge member ``merged_id`` into ``survivor_id``.

    Moves identities, orders, events, WeCom contacts, ownership history and every other row
    that points at a member (tags, points and balances of later apps included: a model may
    define ``merge_member(survivor_id, merged_id)`` to resolve its own unique conflicts).
    Blank profile fields of the survivor are filled from the merged member; reachability
    flags are combined; stats are recomputed. The merged member is kept with status
    ``merged`` and a pointer to the survivor; a merge record and an audit entry are written.
    """
    if survivor_id == merged_id:
        raise ValidationError(_("a member cannot be merged into itself"), code="same_member")
    with transaction.atomic():
        locked = {m.pk: m for m in Member.objects.select_for_update().filter(
            pk__in=[survivor_id, merged_id]).order_by("pk")}
        if survivor_id not in locked or merged_id not in locked:
            raise NotFound(_("member not found"), code="unknown_member")
        survivor, merged = locked[survivor_id], locked[merged_id]
        for member in (survivor, merged):
            if member.status in (MemberStatus.MERGED, MemberStatus.ERASED):
                raise Conflict(_("member %(code)s is %(status)s and cannot take part in a merge")
                               % {"code": member.code, "status": member.get_status_display()},
                               code="member_not_mergeable")
        snapshot = model_to_dict(merged)
        snapshot["birthday"] = merged.birthday.isoformat() if merged.birthday else None
        snapshot["joined_at"] = merged.joined_at.isoformat()
        moved = {"wecom_contacts": _move_contacts(survivor.pk, merged.pk)}
        for relation in Member._meta.get_fields(include_hidden=True):
            if not relation.auto_created or relation.concrete:
                continue  # forward fields; only reverse relations point at members
            model, fk = relation.related_model, relation.field.name
            if (model, fk) in _SPECIAL or relation.one_to_one or relation.many_to_many:
                continue
            hook = getattr(model, "merge_member", None)
            if hook is not None:
                moved[model._meta.label_lower] = hook(survivor.pk, merged.pk)
            else:
                moved[model._meta.label_lower] = model._default_manager.filter(
                    **{fk: merged.pk}).update(**{fk: survivor.pk})
        _move_candidates(survivor.pk, merged.pk)

        for name in FILLABLE:
            if not getattr(survivor, name) and getattr(merged, name):
                setattr(survivor, name, getattr(merged, name))
        if survivor.gender == "unknown" and merged.gender != "unknown":
            survivor.gender = merged.gender
        for flag in FLAGS:
            setattr(survivor, flag, getattr(survivor, flag) or getattr(merged, flag))
        survivor.joined_at = min(survivor.joined_at, merged.joined_at)
        survivor.save()
        merged.status = MemberStatus.MERGED
        merged.merged_into = survivor
        merged.save(update_fields=["status", "merged_into", "updated_at"])

        from siyu.commerce.stats import refresh_member_stats

        refresh_member_stats([survivor.pk, merged.pk])
        from siyu.analytics.services import sync_model_tags
        from siyu.segments.reactions import members_changed

        members_changed([survivor.pk, merged.pk])
        # The merge moved RFM tags but dropped the merged member's RFM rows (RFM is nightly, so an
        # ordinary batch never changes them): put the pair's RFM tags back in line with the rows.
        sync_model_tags(member_ids=[survivor.pk, merged.pk], kinds=["rfm"])
        record = MergeRecord.objects.create(survivor=survivor, merged=merged, moved=moved,
                                            snapshot=snapshot, actor=actor)
        audit(actor=actor, user=user, action="member.merge", target_type="member",
              target_id=survivor.pk, data={"merged": merged.pk, "merged_code": merged.code, "moved": moved})
    return record


def move_member_rows(model, survivor_id: int, merged_id: int, *, unique_with: str) -> int:
    """Move the merged member's rows of ``model`` (unique per member and ``unique_with``) to the
    survivor; a row the survivor already has is dropped. For ``merge_member`` hooks."""
    held = list(model.objects.filter(member_id=survivor_id).values_list(unique_with, flat=True))
    model.objects.filter(member_id=merged_id, **{f"{unique_with}__in": held}).delete()
    return model.objects.filter(member_id=merged_id).update(member_id=survivor_id)


def _move_contacts(survivor_id: int, merged_id: int) -> int:
    """WeCom contacts: one per (member, staff); where both have one, keep the active/earlier."""
    mine = {c.staff_id: c for c in WeComContact.objects.filter(member_id=survivor_id)}
    moved = 0
    for contact in WeComContact.objects.filter(member_id=merged_id):
        kept = mine.get(contact.staff_id)
        if kept is None:
            contact.member_id = survivor_id
            contact.save(update_fields=["member"])
            moved += 1
            continue
        better = (contact.status == ContactStatus.ACTIVE, -contact.added_at.timestamp()) > (
            kept.status == ContactStatus.ACTIVE, -kept.added_at.timestamp())
        if better:
            kept.delete()
            contact.member_id = survivor_id
            contact.save(update_fields=["member"])
            moved += 1
        else:
            contact.delete()
    return moved


def _move_candidates(survivor_id: int, merged_id: int) -> None:
    now = timezone.now()
    pair = Q(member_id=min(survivor_id, merged_id), other_id=max(survivor_id, merged_id))
    MergeCandidate.objects.filter(pair).update(status=MergeStatus.MERGED, resolved_at=now)
    others = MergeCandidate.objects.filter(Q(member_id=merged_id) | Q(other_id=merged_id)).exclude(pair)
    repointed = []
    for candidate in others:
        other = candidate.other_id if candidate.member_id == merged_id else candidate.member_id
        low, high = sorted((survivor_id, other))
        repointed.append(MergeCandidate(member_id=low, other_id=high, reason=candidate.reason,
                                        status=candidate.status, resolved_at=candidate.resolved_at))
    others.delete()
    MergeCandidate.objects.bulk_create(repointed, ignore_conflicts=True)


def dismiss_candidate(*, candidate_id: int, actor: str) -> None:
    """Mark a merge candidate as not the same person."""
    updated = MergeCandidate.objects.filter(pk=candidate_id, status=MergeStatus.OPEN).update(
        status=MergeStatus.DISMISSED, resolved_at=timezone.now())
    if not updated:
        raise NotFound(_("no open merge candidate %(id)s") % {"id": candidate_id})
    audit(actor=actor, action="member.merge_dismissed", target_type="merge_candidate", target_id=candidate_id)
