"""Identity resolution (身份识别): a batch of identity sets → members, deterministically.

Rules, applied to the sets in batch order:
- every known identity points at its member; identities new to Siyu are linked to the member
  the set resolves to;
- a set whose identities point at several members resolves to the member of its strongest
  identity (phone > unionid > WeCom > openid > POS card > nick > email) and the pair is flagged
  as a merge candidate — never merged silently;
- a set with no known identity creates a member (when allowed); two sets of one batch sharing a
  new identity resolve to the same new member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db.models import Q

from siyu.core.db import among, bulk_insert, note_bulk_write
from siyu.members.identities import Ident
from siyu.members.models import Identity, Member, MergeCandidate


@dataclass
class Resolution:
    member_ids: list[int | None]
    created: list[bool]
    new_identities: list[tuple[Ident, int]] = field(default_factory=list)
    candidates: list[tuple[int, int, str]] = field(default_factory=list)


def lookup_identities(idents: Sequence[Ident]) -> dict[Ident, int]:
    """Map each known identity to its member id (one query per kind present)."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for ident in idents:
        by_kind[ident.kind].add(ident.value)
    if not by_kind:
        return {}
    query = Q()
    for kind, values in by_kind.items():
        query |= Q(kind=kind) & Q(among("value", sorted(values)))  # after the kind: see among()
    return {
        Ident(kind, value): member_id
        for kind, value, member_id in Identity.objects.filter(query).values_list(
            "kind", "value", "member_id")
    }


def resolve_identities(identity_sets: Sequence[Sequence[Ident]], *,
                       new_member: Callable[[int], Member] | None, source: str,
                       link_new: bool = True,
                       anchors: Sequence[int | None] | None = None) -> Resolution:
    """Resolve each identity set to a member id (``None``: unknown and ``new_member`` is None).

    ``new_member(i)`` builds the unsaved member for set ``i`` when it needs creating. With
    ``link_new`` the set's unknown identities are linked to the member it resolved to, and
    orders waiting for those identities bind to it. ``anchors[i]``, when given, is a member the
    set is already known to belong to (matched by member code): it wins over every identity.
    Runs inside the caller's transaction.
    """
    known = lookup_identities([i for s in identity_sets for i in s])
    claims: dict[Ident, object] = dict(known)  # ident → member id (int) or placeholder (str)
    targets: list[object] = []
    pending_links: list[tuple[Ident, object]] = []
    candidate_pairs: dict[tuple[object, object], str] = {}
    placeholders: dict[str, int] = {}

    for index, idents in enumerate(identity_sets):
        seen: list[object] = []
        evidence: dict[object, object] = {}
        anchor = anchors[index] if anchors else None
        if anchor is not None:
            seen.append(anchor)
            evidence[anchor] = "member_code"
        for ident in idents:  # strongest first
            target = claims.get(ident)
            if target is not None and target not in seen:
                seen.append(target)
                evidence[target] = ident
        if seen:
            chosen = seen[0]
            for other in seen[1:]:
                candidate_pairs.setdefault(
                    (chosen, other), f"{evidence[chosen]} / {evidence[other]}")
        elif new_member is not None:
            chosen = f"new:{index}"
            placeholders[chosen] = index
        else:
            targets.append(None)
            continue
        targets.append(chosen)
        if link_new or isinstance(chosen, str):
            for ident in idents:
                if ident not in claims:
                    claims[ident] = chosen
                    pending_links.append((ident, chosen))

    created_ids: dict[str, int] = {}
    if placeholders:
        members = [new_member(index) for index in placeholders.values()]
        bulk_insert(Member, members, key="code")
        created_ids = {ph: m.pk for ph, m in zip(placeholders, members, strict=True)}

    def real(target: object) -> int:
        return created_ids[target] if isinstance(target, str) else target

    new_identities = [(ident, real(target)) for ident, target in pending_links]
    Identity.objects.bulk_create(
        [Identity(kind=i.kind, value=i.value, member_id=m, source=source[:50])
         for i, m in new_identities],
        batch_size=1000,
    )
    note_bulk_write(Member, len(created_ids))
    note_bulk_write(Identity, len(new_identities))
    candidates = []
    for (a, b), reason in candidate_pairs.items():
        low, high = sorted((real(a), real(b)))
        if low != high:
            candidates.append((low, high, reason))
    if candidates:
        MergeCandidate.objects.bulk_create(
            [MergeCandidate(member_id=a, other_id=b, reason=r[:300]) for a, b, r in candidates],
            ignore_conflicts=True,
        )
    if new_identities:
        from siyu.commerce.services import bind_orders_to_identities

        bind_orders_to_identities(identities=new_identities)
    return Resolution(
        member_ids=[None if t is None else real(t) for t in targets],
        created=[isinstance(t, str) and placeholders[t] == i for i, t in enumerate(targets)],
        new_identities=new_identities,
        candidates=candidates,
    )
