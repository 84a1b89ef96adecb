"""Building blocks shared by every app's ``admin.py``: read-only facts, data scope, filters.

The console reads facts (members, orders, events …) but never writes them: services own those
writes (ARCHITECTURE.md, "How data flows"). Organisation objects, channels and products stay
editable through ordinary unfold forms.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from unfold.admin import ModelAdmin, StackedInline, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter, TextFilter
from unfold.paginator import InfinitePaginator

from siyu.core.time import start_of_day
from siyu.org.selectors import member_scope_q, staff_for_user

_NO_STAFF = object()


def request_staff(request: HttpRequest):
    """The active ``Staff`` row of the logged-in user, looked up once per request."""
    staff = getattr(request, "_siyu_staff", _NO_STAFF)
    if staff is _NO_STAFF:
        staff = staff_for_user(request.user)
        request._siyu_staff = staff
    return staff


def scope_q(request: HttpRequest, prefix: str = "") -> Q:
    """What the logged-in user may see: everything for superusers, else their staff data scope."""
    if request.user.is_superuser:
        return Q()
    return member_scope_q(request_staff(request), prefix=prefix)


class ConsoleAdmin(ModelAdmin):
    """Defaults for every console page: a submit button for filters, 50 rows a page."""

    list_per_page = 50
    list_max_show_all = 200
    list_filter_submit = True
    show_full_result_count = False
    warn_unsaved_form = True


class NoWritesMixin:
    """Refuse add, change and delete to everyone, superusers included: services own these rows."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class FactAdmin(NoWritesMixin, ConsoleAdmin):
    """A table owned by a service: operators view it, nobody edits it through the console.

    Only the *view* permission counts; add, change and delete are refused for everyone, including
    superusers, so a POST to a change page is a 403 and the row stays as the service wrote it.
    """

    actions = None
    warn_unsaved_form = False
    show_add_link = False


class LargeFactAdmin(FactAdmin):
    """A fact table that grows to millions of rows: no ``COUNT(*)``, just next/previous pages."""

    paginator = InfinitePaginator


class ScopedMixin:
    """Narrow the queryset to the user's data scope (HQ all, a store manager their store …).

    ``scope_prefix`` is the path from this model to the member (``"member__"`` for orders).
    """

    scope_prefix = ""

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(scope_q(request, self.scope_prefix))


class _ReadOnlyInline(NoWritesMixin):
    """Facts shown beside their parent; written only by the services."""

    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.fields or ()


class ReadOnlyTabularInline(_ReadOnlyInline, TabularInline):
    show_change_link = False


class ReadOnlyStackedInline(_ReadOnlyInline, StackedInline):
    pass


class BusinessDayRangeFilter(RangeDateFilter):
    """A from/to day filter for a ``DateTimeField``, in business days (``SIYU_TIME_ZONE``).

    unfold's ``RangeDateFilter`` compares a datetime with midnight, so "to 3 May" would drop
    everything on 3 May; this one keeps whole days and stays a plain range on the indexed column.
    """

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        bounds = {}
        first = _parse_day(self.used_parameters.get(f"{self.parameter_name}_from"))
        last = _parse_day(self.used_parameters.get(f"{self.parameter_name}_to"))
        if first:
            bounds[f"{self.parameter_name}__gte"] = start_of_day(first)
        if last:
            bounds[f"{self.parameter_name}__lt"] = start_of_day(last + dt.timedelta(days=1))
        return queryset.filter(**bounds)


def _parse_day(value) -> dt.date | None:
    if not value or not isinstance(value, str):
        return None
    from unfold.utils import parse_date_str

    try:
        parsed = parse_date_str(value)
    except (ValueError, TypeError):
        return None
    return parsed if isinstance(parsed, dt.date) else None


class ExactValueFilter(TextFilter):
    """A text box matched exactly against one indexed column (codes, batch ids)."""

    field_name = ""

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        try:
            return queryset.filter(**{self.field_name: value})
        except (ValueError, ValidationError):  # e.g. a malformed UUID typed by an operator
            return queryset.none()


def exact_value_filter(field_name: str, title, parameter_name: str | None = None) -> type[ExactValueFilter]:
    return type(
        f"{field_name.title().replace('_', '')}ExactFilter",
        (ExactValueFilter,),
        {"field_name": field_name, "title": title, "parameter_name": parameter_name or field_name},
    )


def exact_search(queryset: QuerySet, term: str, fields: Iterable[str]) -> QuerySet:
    """``term`` equal to any of ``fields``: each an indexed equality, never ``LIKE '%…%'``."""
    q = Q()
    for field in fields:
        q |= Q(**{field: term})
    return queryset.filter(q)


def pretty_json(value) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre class="whitespace-pre-wrap text-sm font-mono">{}</pre>', text)


__all__ = [
    "BusinessDayRangeFilter",
    "ConsoleAdmin",
    "FactAdmin",
    "LargeFactAdmin",
    "ReadOnlyStackedInline",
    "ReadOnlyTabularInline",
    "ScopedMixin",
    "exact_search",
    "exact_value_filter",
    "pretty_json",
    "request_staff",
    "scope_q",
]
