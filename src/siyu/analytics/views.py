"""Console views of the analytics: exports of the dashboard's tables (CSV or XLSX)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from siyu.analytics.exports import TABLES, to_csv, to_xlsx
from siyu.console.dashboard import filters_from_request

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@staff_member_required
@require_GET
def export_view(request: HttpRequest, table: str, fmt: str) -> HttpResponse:
    """One dashboard table for the filters in the query string, narrowed to the user's scope."""
    if table not in TABLES or fmt not in CONTENT_TYPES:
        raise Http404
    if not request.user.has_perm("commerce.view_order"):
        raise PermissionDenied
    filters, _errors = filters_from_request(request)
    header, rows = TABLES[table](filters)
    body = to_csv(header, rows) if fmt == "csv" else to_xlsx(header, rows, table)
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    name = f"{table}-{filters.period.start.isoformat()}-{filters.period.end.isoformat()}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
