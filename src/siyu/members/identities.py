"""Identity values: parsing ``kind:value`` references and normalising values per kind."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.utils.translation import gettext as _

from siyu.core.rows import RowError
from siyu.members.models import IDENTITY_STRENGTH, IdentityKind


class Ident(NamedTuple):
    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


_PHONE_NOISE = re.compile(r"[\s\-()（）.]")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Row fields that carry one identity each, as a shorthand for ``identities``.
SHORTHAND_FIELDS = {
    "phone": IdentityKind.PHONE,
    "unionid": IdentityKind.UNIONID,
    "openid": IdentityKind.OPENID,
    "external_userid": IdentityKind.WECOM,
    "wecom": IdentityKind.WECOM,
    "pos_card": IdentityKind.POS_CARD,
    "nick": IdentityKind.NICK,
    "email": IdentityKind.EMAIL,
}


def normalize_phone(value: str) -> str:
    """``+86 138-0013-8000`` → ``13800138000``; raises ``ValueError`` if not a mainland mobile."""
    text = _PHONE_NOISE.sub("", str(value).strip())
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:
        text = text[2:]
    if not _MAINLAND_MOBILE.match(text):
        raise ValueError(value)
    return text


def normalize(kind: str, value: Any, *, field: str = "identities") -> Ident:
    """Validate and normalise one identity; raises :class:`RowError` naming ``field``."""
    if kind not in IDENTITY_STRENGTH:
        raise RowError(field, "invalid_identity_kind",
                       _("unknown identity kind %(kind)s; use one of: %(kinds)s")
                       % {"kind": kind, "kinds": ", ".join(IdentityKind.values)})
    if value is None or isinstance(value, (dict, list)) or not str(value).strip():
        raise RowError(field, "missing", _("identity %(kind)s has no value") % {"kind": kind})
    text = str(value).strip()
    if kind == IdentityKind.PHONE:
        try:
            text = normalize_phone(text)
        except ValueError:
            raise RowError(field, "invalid_phone",
                           _("not a valid mainland mobile number: %(v)s") % {"v": value}) from None
    elif kind == IdentityKind.EMAIL:
        text = text.lower()
        if not _EMAIL.match(text):
            raise RowError(field, "invalid_email", _("not a valid email: %(v)s") % {"v": value})
    if len(text) > 191:
        raise RowError(field, "too_long", _("identity value longer than 191 characters"))
    return Ident(kind, text)


def parse_ref(ref: Any, *, field: str = "identities") -> Ident:
    """``"phone:13800138000"`` or ``{"kind": "phone", "value": "…"}`` → :class:`Ident`."""
    if isinstance(ref, Mapping):
        return normalize(str(ref.get("kind") or ""), ref.get("value"), field=field)
    text = str(ref or "")
    kind, sep, value = text.partition(":")
    if not sep:
        raise RowError(field, "invalid_identity",
                       _('expected "kind:value", e.g. "phone:13800138000", got %(v)s') % {"v": ref})
    return normalize(kind.strip(), value, field=field)


def row_identities(raw: Mapping[str, Any]) -> list[Ident]:
    """All identities a raw row names, shorthand fields and the ``identities`` list, deduplicated
    and ordered strongest first."""
    found: list[Ident] = []
    for field, kind in SHORTHAND_FIELDS.items():
        value = raw.get(field)
        if value is not None and str(value).strip():
            found.append(normalize(kind, value, field=field))
    listed = raw.get("identities") or []
    if not isinstance(listed, list):
        raise RowError("identities", "invalid_value", _("expected a list"))
    found.extend(parse_ref(ref) for ref in listed)
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda ident: IDENTITY_STRENGTH[ident.kind])
