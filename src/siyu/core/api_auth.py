"""What every ``/api/v1`` router shares: bearer-token auth with scopes, the error body, the lenient
batch envelope and the money/time types of responses.

- ``auth=require("members:write")`` on an operation: no, malformed, unknown or revoked token →
  401; a valid token without the scope → 403 (checked before the body is read, so a denied
  request writes nothing). The authenticated :class:`~siyu.core.models.ApiToken` is
  ``request.auth``.
- Errors leave as ``{"error": {"code", "message", "field"}}`` (see ``siyu.api``).
- Batch bodies are ``{"rows": [...]}`` whose rows are *documented* but typed ``Any``: the service
  validates row by row, so one bad row never fails the whole request.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Schema
from ninja.security import HttpBearer
from pydantic import Field, PlainSerializer, WithJsonSchema

from siyu.core.errors import BatchFailed, BatchTooLarge, PermissionDenied, SiyuError, Unauthenticated
from siyu.core.ingest import IngestResult
from siyu.core.models import ApiToken
from siyu.core.money import CENT
from siyu.core.time import business_zone
from siyu.core.tokens import ALL_SCOPES, SCOPE_AREAS, find_token, token_allows, touch_token

logger = logging.getLogger(__name__)

#: The most rows one batch request may carry.
MAX_BATCH_ROWS = 5000


# --- auth -------------------------------------------------------------------------------------

class BearerToken(HttpBearer):
    """``Authorization: Bearer siyu_<prefix>_<secret>``, requiring one scope."""

    openapi_bearerFormat = "siyu_<prefix>_<secret>"
    openapi_description = (
        "An integration token from `siyu token create NAME --scope members:write …`. Scopes are "
        f"`<area>:read` or `<area>:write` for the areas {', '.join(SCOPE_AREAS)}; write implies read."
    )

    def __init__(self, scope: str):
        if scope not in ALL_SCOPES:
            raise ValueError(f"unknown scope {scope}")
        self.scope = scope
        super().__init__()

    def __call__(self, request: HttpRequest) -> ApiToken:
        header = request.headers.get(self.header, "")
        if not header.strip():
            raise Unauthenticated(_("send an API token: Authorization: Bearer siyu_…"), code="missing_token")
        scheme, _sep, value = header.strip().partition(" ")
        if scheme.lower() != self.openapi_scheme or not value.strip():
            raise Unauthenticated(_("the Authorization header must read: Bearer siyu_…"),
                                  code="invalid_token")
        return self.authenticate(request, value.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        api_token = find_token(token)
        if api_token is None:
            raise Unauthenticated(_("unknown or malformed API token"), code="invalid_token")
        if api_token.revoked_at is not None:
            raise Unauthenticated(_("this API token has been revoked"), code="token_revoked")
        touch_token(api_token)
        if not token_allows(api_token, self.scope):
            raise PermissionDenied(
                _("this token lacks the %(scope)s scope (it has: %(scopes)s)")
                % {"scope": self.scope, "scopes": ", ".join(api_token.scopes) or "-"},
                code="insufficient_scope")
        return api_token


_AUTH: dict[str, BearerToken] = {}


def require(scope: str) -> BearerToken:
    """The auth callable for operations needing ``scope`` (e.g. ``orders:write``)."""
    if scope not in _AUTH:
        _AUTH[scope] = BearerToken(scope)
    return _AUTH[scope]


def api_source(request: HttpRequest) -> str:
    """The ``source`` services record for this request: ``api:<token name>``."""
    return f"api:{request.auth.name}"


# --- response types ---------------------------------------------------------------------------

def _money(value: Decimal) -> str:
    return f"{Decimal(value).quantize(CENT):f}"


def _moment(value: dt.datetime) -> str:
    return timezone.localtime(value, business_zone()).isoformat()


#: Money leaves as a string with two decimals ("1299.00"), never a float.
Money = Annotated[
    Decimal, PlainSerializer(_money, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$", "examples": ["1299.00"]}),
]
#: Datetimes leave as ISO 8601 with the business zone's offset ("2025-03-08T10:30:00+08:00").
Moment = Annotated[
    dt.datetime, PlainSerializer(_moment, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2025-03-08T10:30:00+08:00"]}),
]


class ErrorDetail(Schema):
    code: str = Field(examples=["insufficient_scope"])
    message: str
    field: str | None = Field(None, description="The offending field or parameter path, if any")


class ErrorOut(Schema):
    error: ErrorDetail


def error_body(code: str, message: str, field: str | None = None) -> dict:
    return {"error": {"code": code, "message": str(message), "field": field}}


#: Error responses every authenticated operation documents.
AUTH_ERRORS = {401: ErrorOut, 403: ErrorOut}


# --- batches ----------------------------------------------------------------------------------

def lenient_rows(row_schema: Mapping[str, Any], *, examples: Sequence[Mapping[str, Any]]):
    """The type of ``rows``: documented as ``row_schema`` in OpenAPI, accepted as anything.

    The service rejects a bad row with its row number and reason; the request schema must not
    reject the whole batch because of one row.
    """
    return Annotated[
        list[Annotated[Any, WithJsonSchema(dict(row_schema))]],
        Field(description=_batch_description(), examples=[list(examples)]),
    ]


def _batch_description() -> str:
    return (f"Up to {MAX_BATCH_ROWS:,} rows. Each row is validated on its own: a bad row is rejected "
            "with its 1-based row number, field and reason while the good rows land.")


class RejectionOut(Schema):
    row: int = Field(description="1-based row number in the batch")
    field: str
    code: str
    message: str


class BatchResultOut(Schema):
    batch_id: str
    entity: str
    accepted: int = Field(description="created + updated")
    created: int
    updated: int
    duplicates: int = Field(description="rows that changed nothing (re-sent data)")
    rejected: list[RejectionOut]
    ids: list[int | None] = Field(description="ids of the records the accepted rows landed on, when known")


BATCH_RESPONSES = {200: BatchResultOut, 400: ErrorOut, 413: ErrorOut, 422: ErrorOut, 500: ErrorOut, **AUTH_ERRORS}


def run_batch(service: Callable[..., IngestResult], request: HttpRequest, rows: list[Any]) -> dict:
    """Call a batch-first ingestion service with ``rows`` on behalf of the request's token.

    The service owns its transaction: if it raises, nothing of the batch was saved and the
    client gets 500 ``batch_failed`` saying so (with an incident id that is in the log).
    """
    if len(rows) > MAX_BATCH_ROWS:
        raise BatchTooLarge(
            _("a batch holds at most %(max)s rows, this one has %(n)s; split it into several requests")
            % {"max": f"{MAX_BATCH_ROWS:,}", "n": f"{len(rows):,}"}, field="rows")
    try:
        result = service(rows=rows, source=api_source(request))
    except SiyuError:
        raise
    except Exception as exc:
        incident = uuid.uuid4().hex[:12]
        logger.exception("batch %s via %s failed (incident %s)", service.__name__, api_source(request), incident)
        raise BatchFailed(
            _("the batch failed with an internal error (incident %(incident)s); nothing from this batch "
              "was saved, it is safe to send it again") % {"incident": incident}) from exc
    return result.as_dict()
