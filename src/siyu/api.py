"""The REST API: mounts each app's router under ``/api/v1`` (docs at ``/api/v1/docs``).

Every error, ours or django-ninja's, leaves as ``{"error": {"code", "message", "field"}}`` with
the matching status.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from siyu.analytics.api import router as analytics_router
from siyu.commerce.api import router as commerce_router
from siyu.core.api_auth import error_body
from siyu.core.errors import SiyuError
from siyu.events.api import router as events_router
from siyu.journeys.api import router as journeys_router
from siyu.loyalty.api import router as loyalty_router
from siyu.loyalty.coupon_api import router as coupon_router
from siyu.members.api import router as members_router
from siyu.messaging.api import router as messaging_router
from siyu.segments.api import router as segments_router
from siyu.tags.api import router as tags_router

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="Siyu API",
    version="1",
    description=(
        "Siyu (私域) private-domain operations platform: batch ingestion and member reads.\n\n"
        "Authenticate with `Authorization: Bearer siyu_…` (create a token with "
        "`siyu token create NAME --scope members:write`). Batches take `{\"rows\": [...]}` of up to "
        "5,000 rows, validate each row on its own and answer 200 with per-row rejections; re-sending a "
        "batch creates nothing. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`. Money is a "
        "string with two decimals; times are ISO 8601 with an offset."
    ),
    urls_namespace="api-v1",
)
api.add_router("", members_router)
api.add_router("", commerce_router)
api.add_router("", events_router)
api.add_router("", tags_router)
api.add_router("", segments_router)
api.add_router("", analytics_router)
api.add_router("", loyalty_router)
api.add_router("", coupon_router)
api.add_router("", messaging_router)
api.add_router("", journeys_router)


def _respond(request: HttpRequest, status: int, body: dict) -> HttpResponse:
    response = api.create_response(request, body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="siyu"'
    return response


@api.exception_handler(SiyuError)
def _domain_error(request: HttpRequest, exc: SiyuError) -> HttpResponse:
    return _respond(request, exc.status, {"error": exc.as_dict()})


def _field_path(loc) -> str:
    """``("body", "payload", "rows", 3)`` → ``rows[3]``; ``("query", "limit")`` → ``limit``."""
    parts = list(loc[1:])
    if loc and loc[0] == "body" and parts and parts[0] == "payload":
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    details = [{"field": _field_path(e.get("loc", ())), "code": e.get("type", "invalid"),
                "message": e.get("msg", "")} for e in exc.errors]
    first = details[0] if details else {"field": None, "message": _("invalid request")}
    body = error_body("invalid_request", f"{first['field']}: {first['message']}" if first["field"]
                      else first["message"], first["field"] or None)
    body["error"]["details"] = details
    return _respond(request, 422, body)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _respond(request, 401, error_body("unauthenticated", _("send an API token: Authorization: Bearer siyu_…")))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 429: "throttled"}.get(exc.status_code, "error")
    if exc.status_code == 400 and "parse" in str(exc).lower():
        return _respond(request, 400, error_body("invalid_json", _("the request body is not valid JSON")))
    return _respond(request, exc.status_code, error_body(code, str(exc)))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _respond(request, 404, error_body("not_found", _("not found")))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _respond(request, 413, error_body(
        "request_too_large", _("the request body is larger than the server accepts; send fewer rows per batch")))


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return _respond(request, 500, error_body("server_error", _("internal server error")))
