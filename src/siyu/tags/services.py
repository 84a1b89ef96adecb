"""Tag writes (打标签): manual, by list, by rule and by model; every change kept as history.

All writes are set-based over member ids and idempotent: applying a tag a member holds, or
removing one they do not hold, changes nothing and writes no history.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.db import among, chunked, insert_rows, note_bulk_write
from siyu.core.errors import PermissionDenied, ValidationError
from siyu.members.identities import parse_ref
from siyu.members.models import Member
from siyu.members.resolution import lookup_identities
from siyu.org.models import Staff
from siyu.org.selectors import member_scope_q
from siyu.tags.models import MemberTag, MemberTagChange, Tag, TagAction, TagCategory, TagGroup, TagSource


@dataclass
class TagResult:
    """What a tagging call did: holders added and removed; rows of a list that matched nobody."""

    added: int = 0
    removed: int = 0
    unchanged: int = 0
    unmatched: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"added": self.added, "removed": self.removed, "unchanged": self.unchanged,
                "unmatched": self.unmatched}


def apply_tags(*, member_ids: Iterable[int], tags: Sequence[Tag], source: str, actor: str = "",
               staff: Staff | None = None, expires_at: dt.datetime | None = None, reason: str = "",
               now: dt.datetime | None = None) -> TagResult:
    """Give ``tags`` to the members; in an exclusive group the member's other tag is removed.

    Idempotent: a member already holding a tag keeps it (its expiry is updated when
    ``expires_at`` differs). Rejects two tags of one exclusive group and inactive tags.
    """
    now = now or timezone.now()
    ids = sorted(set(member_ids))
    _check_tags(tags)
    result = TagResult()
    with transaction.atomic():
        for tag in tags:
            if tag.group.exclusive:
                others = Tag.objects.filter(group_id=tag.group_id).exclude(pk=tag.pk)
                result.removed += _remove(ids, others, source=source, actor=actor, reason=reason or _(
                    "replaced by %(tag)s (exclusive group)") % {"tag": tag.name}, now=now)
            added, unchanged = _add(ids, tag, source=source, actor=actor, staff=staff, expires_at=expires_at,
                                    reason=reason, now=now)
            result.added += added
            result.unchanged += unchanged
    return result


def remove_tags(*, member_ids: Iterable[int], tags: Sequence[Tag], source: str, actor: str = "",
                reason: str = "", now: dt.datetime | None = None) -> TagResult:
    """Take ``tags`` away from the members (history kept); members without them are unchanged."""
    ids = sorted(set(member_ids))
    with transaction.atomic():
        removed = _remove(ids, tags, source=source, actor=actor, reason=reason, now=now or timezone.now())
    return TagResult(removed=removed, unchanged=len(ids) * len(tags) - removed)


def tag_member_as_staff(*, staff: Staff, member: Member, tags: Sequence[Tag], remove: bool = False,
                        expires_at: dt.datetime | None = None) -> TagResult:
    """A guide or manager tags one customer (个性化标签), only within their data scope."""
    if not Member.objects.filter(member_scope_q(staff), pk=member.pk).exists():
        raise PermissionDenied(_("this member is outside your data scope"), code="out_of_scope", field="member")
    actor = f"staff:{staff.code}"
    if remove:
        return remove_tags(member_ids=[member.pk], tags=tags, source=TagSource.MANUAL, actor=actor)
    return apply_tags(member_ids=[member.pk], tags=tags, source=TagSource.MANUAL, actor=actor, staff=staff,
                      expires_at=expires_at)


def tag_identities(*, identities: Sequence[str], tags: Sequence[Tag], source: str = TagSource.IMPORT,
                   actor: str = "", remove: bool = False, expires_at: dt.datetime | None = None) -> TagResult:
    """Tag the members named by a list of identities (``13800138000``, ``phone:…``, ``nick:…``).

    A bare 11-digit number is a phone. Rows that are malformed or match no member are returned
    in ``unmatched`` with their row number (1-based) and reason; the others are tagged.
    """
    member_ids, unmatched = resolve_identity_list(identities)
    if remove:
        result = remove_tags(member_ids=member_ids, tags=tags, source=source, actor=actor)
    else:
        result = apply_tags(member_ids=member_ids, tags=tags, source=source, actor=actor, expires_at=expires_at)
    result.unmatched = unmatched
    return result


def resolve_identity_list(identities: Sequence[str]) -> tuple[list[int], list[dict]]:
    """Member ids for a list of identities, and the rows that matched nobody (with why)."""
    parsed, unmatched = [], []
    for row, raw in enumerate(identities, start=1):
        text = str(raw or "").strip()
        if not text:
            continue
        if ":" not in text:
            text = f"phone:{text}" if text.lstrip("+").isdigit() else f"nick:{text}"
        try:
            parsed.append((row, raw, parse_ref(text, field="identity")))
        except Exception as error:  # RowError: malformed phone, unknown kind
            unmatched.append({"row": row, "value": raw, "reason": getattr(error, "message", str(error))})
    known = lookup_identities([ident for _, _, ident in parsed])
    ids = []
    for row, raw, ident in parsed:
        member_id = known.get(ident)
        if member_id is None:
            unmatched.append({"row": row, "value": raw, "reason": _("no member has this identity")})
        else:
            ids.append(member_id)
    unmatched.sort(key=lambda u: u["row"])
    return ids, unmatched


def set_model_tags(*, group: TagGroup, assignments: Mapping[int, Tag | None] | QuerySet, actor: str,
                   member_ids: Iterable[int] | None = None, now: dt.datetime | None = None) -> TagResult:
    """Make members hold exactly their model tag of an exclusive group (RFM class, lifecycle
    stage), set-based: a handful of statements per 1,000 members, or per group.

    ``assignments`` is either

    - a mapping ``{member_id: Tag | None}``: each named member holds exactly that tag of the
      group (``None``: none of them); members not named are untouched; or
    - a query set of rows with ``member_id`` and ``tag_id`` (at most one per member; a null
      ``tag_id`` counts as no tag) naming every holder the group should have: every other holder
      loses the group's tag — among ``member_ids`` only, when given (then the rows are narrowed
      to them too). The comparison and the new holders stay in the database, however many.

    Every tag added or removed is recorded with source ``model``. Idempotent: a member already
    holding the right tag is not written, and re-running writes nothing. Rejects a tag from
    another group. Runs in the caller's transaction (or its own). ``unchanged`` is counted for a
    mapping only.
    """
    now = now or timezone.now()
    tags = {t.pk: t for t in Tag.objects.filter(group=group)}
    with transaction.atomic():
        if isinstance(assignments, QuerySet):
            return _sync_model_holders(tags, assignments, member_ids, actor=actor, now=now)
        return _assign_model_tags(group, tags, assignments, actor=actor, now=now)


def _assign_model_tags(group: TagGroup, tags: dict[int, Tag], assignments: Mapping[int, Tag | None], *,
                       actor: str, now: dt.datetime) -> TagResult:
    for tag in {t for t in assignments.values() if t is not None}:
        if tag.pk not in tags:
            raise ValidationError(_("%(tag)s is not a tag of the group %(group)s") % {"tag": tag.name,
                                  "group": group.name}, code="wrong_group", field="assignments")
    result = TagResult()
    for part in chunked(sorted(assignments), 1000):
        holding = list(MemberTag.objects.filter(among("member_id", part), tag_id__in=list(tags))
                       .values_list("pk", "member_id", "tag_id"))
        wanted = {m: assignments[m].pk if assignments[m] is not None else None for m in part}
        stale = [(pk, m, t) for pk, m, t in holding if wanted[m] != t]
        held = {(m, t) for _pk, m, t in holding}
        new = [(m, t) for m, t in wanted.items() if t is not None and (m, t) not in held]
        result.removed += _drop_holders(stale, actor=actor, now=now)
        _pair_history(new, TagAction.ADDED, actor=actor, now=now)
        # As _insert_holders: a holder another transaction added meanwhile is left alone.
        insert_rows(MemberTag, ["member_id", "tag_id", "source", "actor", "applied_at"],
                    [(m, t, TagSource.MODEL, actor[:100], now) for m, t in new], ignore_conflicts=True)
        note_bulk_write(MemberTag, len(new))
        result.added += len(new)
        result.unchanged += len(holding) - len(stale)
    return result


def _sync_model_holders(tags: dict[int, Tag], rows: QuerySet, member_ids: Iterable[int] | None, *, actor: str,
                        now: dt.datetime) -> TagResult:
    result = TagResult()
    if not tags:
        return result
    rows = rows.filter(tag_id__isnull=False)
    parts = [None] if member_ids is None else list(chunked(sorted(set(member_ids)), 1000))
    for part in parts:
        # among(): one array parameter on PostgreSQL, not a thousand placeholders for the driver to
        # split in each of the three statements that embed the part.
        wanted = rows if part is None else rows.filter(among("member_id", part))
        holders = MemberTag.objects.filter(tag_id__in=list(tags))
        if part is not None:
            holders = holders.filter(among("member_id", part))
        stale = holders.exclude(Exists(wanted.filter(member_id=OuterRef("member_id"), tag_id=OuterRef("tag_id"))))
        result.removed += _drop_holders(list(stale.order_by("member_id").values_list("pk", "member_id", "tag_id")),
                                        actor=actor, now=now)
        missing = wanted.exclude(Exists(MemberTag.objects.filter(member_id=OuterRef("member_id"),
                                                                 tag_id=OuterRef("tag_id"))))
        result.added += _insert_holders(missing.values("member_id", "tag_id").order_by("member_id"), actor=actor,
                                        now=now)
    return result


def _drop_holders(rows: list[tuple[int, int, int]], *, actor: str, now: dt.datetime) -> int:
    """Delete ``(pk, member_id, tag_id)`` holdings and record their removal."""
    for part in chunked([pk for pk, _m, _t in rows], 1000):
        MemberTag.objects.filter(pk__in=part).delete()
    _pair_history([(m, t) for _pk, m, t in rows], TagAction.REMOVED, actor=actor, now=now)
    return len(rows)


def _insert_holders(rows: QuerySet, *, actor: str, now: dt.datetime) -> int:
    """``INSERT … SELECT`` the ``(member_id, tag_id)`` rows as model-tag holders, history first.

    A holder another transaction added meanwhile (two ingestion batches of one member) is left
    alone rather than failing the batch."""
    sql, params = rows.query.sql_with_params()
    quote = connection.ops.quote_name
    at = connection.ops.adapt_datetimefield_value(now)
    mysql = connection.vendor == "mysql"

    def insert(model, columns: list[str], values: list) -> int:
        # WHERE: SQLite reads "FROM (…) s ON CONFLICT" as a join without it.
        ignore = "IGNORE " if mysql and model is MemberTag else ""
        statement = (f"INSERT {ignore}INTO {quote(model._meta.db_table)} (member_id, tag_id, {', '.join(columns)}) "  # noqa: S608
                     f"SELECT s.member_id, s.tag_id, {', '.join(['%s'] * len(values))} FROM ({sql}) s WHERE 1 = 1")
        if model is MemberTag and not mysql:
            statement += " ON CONFLICT (member_id, tag_id) DO NOTHING"
        with connection.cursor() as cursor:
            cursor.execute(statement, [*values, *params])
            return cursor.rowcount

    added = insert(MemberTagChange, ["action", "source", "actor", "reason", "at"],
                   [TagAction.ADDED, TagSource.MODEL, actor[:100], "", at])
    held = insert(MemberTag, ["source", "actor", "applied_at"], [TagSource.MODEL, actor[:100], at])
    note_bulk_write(MemberTag, held)  # a first scoring adds a holder per member: fresh statistics
    note_bulk_write(MemberTagChange, added)
    return added


def _pair_history(pairs: list[tuple[int, int]], action: str, *, actor: str, now: dt.datetime) -> None:
    insert_rows(MemberTagChange, ["member_id", "tag_id", "action", "source", "actor", "reason", "at"],
                [(m, t, action, TagSource.MODEL, actor[:100], "", now) for m, t in pairs])
    note_bulk_write(MemberTagChange, len(pairs))


def expire_tags(*, now: dt.datetime | None = None) -> int:
    """Remove every tag whose expiry has passed (nightly); history says why."""
    now = now or timezone.now()
    expired = list(MemberTag.objects.filter(expires_at__lte=now).values_list("member_id", "tag_id"))
    by_tag: dict[int, list[int]] = {}
    for member_id, tag_id in expired:
        by_tag.setdefault(tag_id, []).append(member_id)
    removed = 0
    with transaction.atomic():
        for tag in Tag.objects.filter(pk__in=by_tag):
            removed += _remove(by_tag[tag.pk], [tag], source=TagSource.RULE, actor="expiry",
                               reason=_("expired"), now=now)
    return removed


def refresh_rule_tags(*, member_ids: Iterable[int] | None = None, tags: Sequence[Tag] | None = None,
                      now: dt.datetime | None = None) -> TagResult:
    """Apply and remove rule tags so that holders are exactly the members matching each rule.

    With ``member_ids`` only those members are looked at (the real-time path after a batch);
    without, everyone (the nightly pass). Both give the same holders. In an exclusive group
    the first matching rule tag (by sort order) wins. Runs in the caller's transaction.
    """
    from siyu.segments.compiler import compile_rule
    from siyu.segments.rules import parse_rule

    now = now or timezone.now()
    if tags is None:
        tags = list(Tag.objects.filter(rule__isnull=False, is_active=True).select_related("group")
                    .order_by("group__sort", "group_id", "sort", "pk"))
    ids = None if member_ids is None else sorted(set(member_ids))
    if ids is not None and not ids:
        return TagResult()
    result = TagResult()
    taken: dict[int, Q] = {}  # exclusive group → members already matched by an earlier tag
    for tag in tags:
        if tag.rule is None:
            continue
        q = compile_rule(parse_rule(tag.rule), now=now)
        effective = q & ~taken[tag.group_id] if tag.group_id in taken else q
        if tag.group.exclusive:
            taken[tag.group_id] = (taken[tag.group_id] | q) if tag.group_id in taken else q
        for part in [None] if ids is None else chunked(ids, 1000):
            members = Member.objects.all() if part is None else Member.objects.filter(pk__in=part)
            holders = MemberTag.objects.filter(tag=tag)
            if part is not None:
                holders = holders.filter(member_id__in=part)
            to_add = members.filter(effective).exclude(pk__in=holders.values("member_id"))
            to_remove = holders.exclude(member_id__in=members.filter(effective).values("pk"))
            removed_ids = list(to_remove.values_list("member_id", flat=True))
            added_ids = list(to_add.values_list("pk", flat=True))
            result.removed += _remove(removed_ids, [tag], source=TagSource.RULE, actor="rule",
                                      reason=_("no longer matches the rule"), now=now)
            added, _unchanged = _add(added_ids, tag, source=TagSource.RULE, actor="rule", staff=None,
                                     expires_at=None, reason=_("matches the rule"), now=now)
            result.added += added
    return result


# -- internals ----------------------------------------------------------------------------------
def _check_tags(tags: Sequence[Tag]) -> None:
    seen: dict[int, Tag] = {}
    for tag in tags:
        if not tag.is_active:
            raise ValidationError(_("tag %(tag)s is inactive") % {"tag": tag.name}, code="inactive_tag", field="tags")
        if tag.rule is not None:
            raise ValidationError(_("%(tag)s is a rule tag: its rule applies and removes it") % {"tag": tag.name},
                                  code="rule_tag", field="tags")
        if tag.group.exclusive:
            if tag.group_id in seen:
                raise ValidationError(_("%(a)s and %(b)s are in the same exclusive group; a member holds at most "
                                        "one of them") % {"a": seen[tag.group_id].name, "b": tag.name},
                                      code="exclusive_conflict", field="tags")
            seen[tag.group_id] = tag


def _add(ids: list[int], tag: Tag, *, source: str, actor: str, staff: Staff | None,
         expires_at: dt.datetime | None, reason: str, now: dt.datetime) -> tuple[int, int]:
    added = unchanged = 0
    for part in chunked(ids, 1000):
        holding = MemberTag.objects.filter(tag=tag, member_id__in=part)
        held = set(holding.values_list("member_id", flat=True))
        if expires_at is not None and held:
            holding.exclude(expires_at=expires_at).update(expires_at=expires_at)
        new = [m for m in part if m not in held]
        MemberTag.objects.bulk_create([
            MemberTag(member_id=m, tag=tag, source=source, applied_by=staff, actor=actor[:100], applied_at=now,
                      expires_at=expires_at) for m in new], batch_size=1000)
        _history(new, tag, TagAction.ADDED, source=source, actor=actor, reason=reason, now=now)
        added += len(new)
        unchanged += len(held)
    return added, unchanged


def _remove(ids: list[int], tags: Iterable[Tag], *, source: str, actor: str, reason: str, now: dt.datetime) -> int:
    removed = 0
    for tag in tags:
        for part in chunked(ids, 1000):
            holding: QuerySet = MemberTag.objects.filter(tag=tag, member_id__in=part)
            gone = sorted(holding.values_list("member_id", flat=True))
            if gone:
                holding.delete()
                _history(gone, tag, TagAction.REMOVED, source=source, actor=actor, reason=reason, now=now)
                removed += len(gone)
    return removed


def _history(ids: list[int], tag: Tag, action: str, *, source: str, actor: str, reason: str,
             now: dt.datetime) -> None:
    MemberTagChange.objects.bulk_create([
        MemberTagChange(member_id=m, tag=tag, action=action, source=source, actor=actor[:100], reason=reason[:200],
                        at=now) for m in ids], batch_size=1000)


# Taxonomy --------------------------------------------------------------------------------------

_CODE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def save_tag_group(*, code: str, name: str, category: str = TagCategory.PERSONAL, exclusive: bool = False,
                   brand=None) -> TagGroup:
    """Create or update the tag group ``code`` (idempotent key). Rejects a malformed code."""
    if not _CODE.match(code):
        raise ValidationError(_("a code is letters, digits, - and _"), field="code")
    return TagGroup.objects.update_or_create(code=code, defaults={
        "name": name, "category": category, "exclusive": exclusive, "brand": brand})[0]


def save_tag(*, code: str, group: TagGroup, name: str, rule=None, is_active: bool = True,
             now: dt.datetime | None = None) -> Tag:
    """Create or update the tag ``code`` (idempotent key). With ``rule`` (a segment rule, validated
    first: ``RuleError`` names the node) it is a rule tag, applied to every member matching it
    right away; afterwards ingestion batches and the nightly run keep its holders exact."""
    from siyu.segments.rules import parse_rule

    if not _CODE.match(code):
        raise ValidationError(_("a code is letters, digits, - and _"), field="code")
    if rule is not None:
        parse_rule(rule)
    with transaction.atomic():
        tag = Tag.objects.update_or_create(code=code, defaults={
            "group": group, "name": name, "rule": rule, "is_active": is_active})[0]
        if tag.rule is not None and tag.is_active:
            refresh_rule_tags(tags=[tag], now=now)
    return tag
