"""Reads for the organisation, and the data-scope filter every member query narrows by."""

from __future__ import annotations

from django.db.models import Q

from siyu.org.models import Scope, Staff


def staff_for_user(user) -> Staff | None:
    if user is None or not user.is_authenticated:
        return None
    return Staff.objects.filter(user=user, is_active=True).select_related("store", "region").first()


def member_scope_q(staff: Staff | None, *, prefix: str = "") -> Q:
    """A ``Q`` narrowing members to what ``staff`` may see.

    ``prefix`` points at the member from another model (``"member__"`` for orders). A user with
    no staff record sees nothing unless they are a superuser (handled by the caller).
    """
    if staff is None:
        return Q(pk__in=[])
    scope = staff.data_scope
    if scope == Scope.GROUP:
        return Q()
    if scope == Scope.REGION:
        if staff.region_id is None:
            return Q(pk__in=[])
        return Q(**{f"{prefix}store__region_id": staff.region_id})
    if scope == Scope.STORE:
        if staff.store_id is None:
            return Q(pk__in=[])
        return Q(**{f"{prefix}store_id": staff.store_id})
    return Q(**{f"{prefix}guide_id": staff.pk})
