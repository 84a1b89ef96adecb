"""Integration API tokens (接口令牌): created once, stored hashed, scoped, revocable.

A token reads ``siyu_<prefix>_<secret>``. The prefix is stored in clear and indexed so a request
finds its token in one query; only the SHA-256 of the secret is kept. A hash without salt or
stretching is enough here because the secret is 238 random bits, not a password a person chose.

Scopes are ``<area>:read`` or ``<area>:write`` for the areas in :data:`SCOPE_AREAS`; ``write``
implies ``read``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.core.audit import audit
from siyu.core.errors import Conflict, NotFound, ValidationError
from siyu.core.models import ApiToken

TOKEN_PREFIX = "siyu"  # noqa: S105 (a public marker, not a secret)
SCOPE_AREAS = ("members", "orders", "events", "tags", "segments", "analytics", "loyalty", "journeys")
SCOPE_ACTIONS = ("read", "write")
ALL_SCOPES = tuple(f"{area}:{action}" for area in SCOPE_AREAS for action in SCOPE_ACTIONS)
#: ``last_used_at`` is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_PREFIX_LENGTH = 8
_SECRET_LENGTH = 40  # 40 × log2(62) ≈ 238 bits
# ``api:<name>`` is the source recorded on identities, whose column holds 50 characters.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,45}$")
# Compared against when the prefix is unknown, so a miss costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"siyu-no-such-token").hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token: ``plain`` is shown once and never stored."""

    token: ApiToken
    plain: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    """Validate scope names (``members:write``, ``orders:read`` …); returns them sorted, unique.

    Accepts comma-separated values too (``members:write,orders:read``).
    """
    found: set[str] = set()
    for item in scopes:
        for scope in str(item).split(","):
            scope = scope.strip().lower()
            if not scope:
                continue
            if scope not in ALL_SCOPES:
                raise ValidationError(
                    _("unknown scope %(scope)s; scopes are <area>:read or <area>:write with area one of "
                      "%(areas)s, e.g. members:write") % {"scope": scope, "areas": ", ".join(SCOPE_AREAS)},
                    code="invalid_scope", field="scopes")
            found.add(scope)
    if not found:
        raise ValidationError(_("a token needs at least one scope, e.g. members:write"),
                              code="invalid_scope", field="scopes")
    return sorted(found)


def token_allows(token: ApiToken, scope: str) -> bool:
    """True when ``token`` grants ``scope``; ``<area>:write`` grants ``<area>:read``."""
    granted = set(token.scopes or ())
    if scope in granted:
        return True
    area, _sep, action = scope.partition(":")
    return action == "read" and f"{area}:write" in granted


def create_token(*, name: str, scopes: Iterable[str], actor: str) -> IssuedToken:
    """Create a token named ``name`` with ``scopes``; audited as ``api_token.create``.

    Returns the token and its plain text, which is not stored anywhere: show it once. Raises
    :class:`ValidationError` for a malformed name or unknown scope, :class:`Conflict` when the
    name is taken (revoked tokens keep their name).
    """
    name = (name or "").strip()
    if not _NAME.match(name):
        raise ValidationError(
            _("a token name is 1–46 letters, digits, dots, dashes or underscores, e.g. tmall-sync"),
            code="invalid_name", field="name")
    scopes = normalize_scopes(scopes)
    if ApiToken.objects.filter(name=name).exists():
        raise Conflict(_("a token named %(name)s already exists") % {"name": name},
                       code="token_exists", field="name")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LENGTH))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(name=name, prefix=prefix, secret_hash=hash_secret(secret),
                                            scopes=scopes)
            audit(actor=actor, action="api_token.create", target_type="api_token", target_id=token.pk,
                  data={"name": name, "prefix": prefix, "scopes": scopes})
    except IntegrityError:
        raise Conflict(_("a token named %(name)s already exists") % {"name": name},
                       code="token_exists", field="name") from None
    return IssuedToken(token, f"{TOKEN_PREFIX}_{prefix}_{secret}")


def revoke_token(*, name: str, actor: str) -> ApiToken:
    """Revoke the token named ``name`` (it answers 401 from now on); audited as ``api_token.revoke``.

    Revoking a revoked token changes nothing. Raises :class:`NotFound` for an unknown name.
    """
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(name=name).first()
        if token is None:
            raise NotFound(_("no token named %(name)s") % {"name": name}, code="unknown_token", field="name")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit(actor=actor, action="api_token.revoke", target_type="api_token", target_id=token.pk,
                  data={"name": token.name, "prefix": token.prefix})
    return token


def list_tokens():
    return ApiToken.objects.order_by("name")


def find_token(plain: str) -> ApiToken | None:
    """The token ``plain`` names if its secret matches (revoked included: callers check); one query."""
    head, sep, rest = (plain or "").strip().partition("_")
    prefix, sep2, secret = rest.partition("_")
    if head != TOKEN_PREFIX or not sep or not sep2 or not prefix or not secret or len(prefix) > 12:
        return None
    token = ApiToken.objects.filter(prefix=prefix).first()
    expected = token.secret_hash if token else _DUMMY_HASH
    if not hmac.compare_digest(expected, hash_secret(secret)) or token is None:
        return None
    return token


def touch_token(token: ApiToken, *, now: dt.datetime | None = None) -> None:
    """Record use, writing at most once per :data:`LAST_USED_RESOLUTION` per token."""
    now = now or timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
