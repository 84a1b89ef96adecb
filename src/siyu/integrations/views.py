"""Console page: import a file of members, orders or events (the same code path as ``siyu import``)."""

from __future__ import annotations

import base64
import io

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from siyu.integrations.forms import ImportForm
from siyu.integrations.importers.errors import ImportSetupError
from siyu.integrations.importers.report import ImportReport, write_rejects
from siyu.integrations.services import import_file

#: Importing an entity needs the permission to add it.
PERMISSIONS = {"members": "members.add_member", "orders": "commerce.add_order", "events": "events.add_event"}
INLINE_REJECTS = 100


def _rejects_download(report: ImportReport) -> str:
    """The rejects CSV as a data: URI, so the page needs no stored file to offer it."""
    text = io.StringIO()
    write_rejects(report, text)
    payload = base64.b64encode(("\ufeff" + text.getvalue()).encode()).decode()
    return f"data:text/csv;charset=utf-8;base64,{payload}"


def _raw_text(raw: dict) -> str:
    return " · ".join(f"{key}: {value}" for key, value in raw.items() if value not in (None, ""))


@staff_member_required
@require_http_methods(["GET", "POST"])
def import_view(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if not request.user.has_perm(PERMISSIONS[data["entity"]]):
            raise PermissionDenied
        upload = data["file"]
        upload.seek(0)
        try:
            report = import_file(
                entity=data["entity"], stream=upload.file, filename=upload.name, preset=data["preset"],
                mapping=data["mapping"], channel=data["channel"].strip(), file_format=data["file_format"] or None,
                encoding=data["encoding"].strip() or None, actor=f"console:{request.user.get_username()}",
            )
        except ImportSetupError as error:
            form.add_error(None, str(error.message))
    context = {
        **admin.site.each_context(request),
        "title": _("Import a file"),
        "form": form,
        "report": report,
    }
    if report is not None:
        stem = upload.name.rsplit(".", 1)[0]
        context.update(
            rejects=[(r, _raw_text(r.raw)) for r in sorted(report.rejects, key=lambda r: r.row)[:INLINE_REJECTS]],
            more_rejects=max(report.rejected_rows - INLINE_REJECTS, 0),
            rejects_url=_rejects_download(report) if report.rejects else "",
            rejects_name=f"{stem}.rejects.csv",
        )
    return TemplateResponse(request, "integrations/import.html", context)
