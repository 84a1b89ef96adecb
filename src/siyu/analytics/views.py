"""Console views of the analytics: exports of the dashboard's tables (CSV or XLSX), an RFM class
of the grid made a segment in one click, and the dashboard's loyalty section (loaded after the page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from siyu.analytics.exports import TABLES, to_csv, to_xlsx
from siyu.analytics.models import RfmClass
from siyu.console.dashboard import filters_from_request, loyalty_section_context
from siyu.org.models import Brand
from siyu.segments.services import save_segment

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


@staff_member_required
@require_GET
def loyalty_section_view(request: HttpRequest) -> HttpResponse:
    """The dashboard's loyalty section (htmx partial) for the filters in the query string."""
    return render(request, "admin/siyu_dashboard_loyalty.html", {"d": loyalty_section_context(request)})


@staff_member_required
@require_POST
def rfm_segment_view(request: HttpRequest) -> HttpResponse:
    """One click on the RFM grid: a dynamic segment of that class (with the brand, if one is
    chosen), saved through ``save_segment`` (the same code again updates it), then opened in the
    segment builder."""
    if not request.user.has_perm("segments.add_segment"):
        raise PermissionDenied
    klass = request.POST.get("rfm_class", "")
    brand_code = request.POST.get("brand") or None
    if klass not in RfmClass.values:
        raise Http404
    brand = Brand.objects.filter(code=brand_code).first() if brand_code else None
    if brand_code and brand is None:
        raise Http404
    rule = {"model": "rfm_class", "op": "eq", "value": klass}
    if brand is not None:
        rule["brand"] = brand.code
    code = f"rfm-{brand.code if brand else 'all'}-{klass}".replace("_", "-")[:64]
    label = str(dict(RfmClass.choices)[klass])
    name = f"{brand.name} · {label}" if brand else label
    segment = save_segment(code=code, name=name[:100], rule=rule, user=request.user,
                           description=_("From the RFM grid of the dashboard"))
    messages.success(request, _("Segment %(name)s: %(n)s members") % {"name": segment.name, "n": segment.size})
    return redirect("segments:builder_edit", code=segment.code)
