"""Domain errors: a code, a translatable message and the offending field/row.

The API turns them into ``{"error": {"code", "message", "field"}}`` with ``status``; the CLI
prints them and exits non-zero.
"""

from __future__ import annotations


class SiyuError(Exception):
    status = 400
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 row: int | None = None):
        super().__init__(str(message))
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.row = row

    def as_dict(self) -> dict:
        return {"code": self.code, "message": str(self.message), "field": self.field}


class ValidationError(SiyuError):
    status = 400
    code = "invalid"


class NotFound(SiyuError):
    status = 404
    code = "not_found"


class PermissionDenied(SiyuError):
    status = 403
    code = "forbidden"


class Conflict(SiyuError):
    status = 409
    code = "conflict"


class Unauthenticated(SiyuError):
    status = 401
    code = "unauthenticated"


class BatchTooLarge(SiyuError):
    status = 413
    code = "batch_too_large"


class BatchFailed(SiyuError):
    """An unexpected error inside a batch service: the batch was rolled back."""

    status = 500
    code = "batch_failed"
