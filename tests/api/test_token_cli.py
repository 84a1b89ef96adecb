"""`siyu token create|list|revoke`."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from siyu.core.models import ApiToken, AuditEntry
from siyu.members.models import Member
from tests.api.conftest import Api

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    with translation.override("en"):
        call_command("token", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def test_create_prints_a_working_token_and_stores_only_its_hash():
    plain = _run("create", "tmall-sync", "--scope", "members:write", "--scope", "orders:read")

    token = ApiToken.objects.get()
    assert plain.startswith(f"siyu_{token.prefix}_")
    secret = plain.split("_", 2)[2]
    assert len(secret) >= 32
    assert token.scopes == ["members:write", "orders:read"]
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(v) for v in ApiToken.objects.values_list().get())
    assert secret not in stored
    response = Api(plain).post("/members/batch", {"rows": [{"phone": "13800138000"}]})
    assert response.status_code == 200
    assert Member.objects.count() == 1
    assert Api(plain).get("/members").status_code == 200
    assert Api(plain).post("/orders/batch", {"rows": []}).status_code == 403


def test_comma_separated_scopes_are_accepted():
    _run("create", "bi", "--scope", "members:read,events:read")

    assert ApiToken.objects.get().scopes == ["events:read", "members:read"]


@pytest.mark.parametrize("scope", ["members", "members:delete", "coupons:read", ""])
def test_an_unknown_scope_is_refused_with_a_clear_error(scope):
    with pytest.raises(CommandError, match="scope"):
        _run("create", "bad", "--scope", scope)

    assert ApiToken.objects.count() == 0


@pytest.mark.parametrize("name", ["", "has space", "_leading", "x" * 47, "名字"])
def test_a_malformed_name_is_refused(name):
    with pytest.raises(CommandError, match="invalid_name"):
        _run("create", name, "--scope", "members:read")

    assert ApiToken.objects.count() == 0


def test_a_token_name_is_unique():
    _run("create", "crm", "--scope", "members:read")

    with pytest.raises(CommandError, match="already exists"):
        _run("create", "crm", "--scope", "members:read")


def test_list_shows_tokens_without_secrets():
    plain = _run("create", "crm", "--scope", "members:read")
    _run("create", "pos", "--scope", "orders:write")
    _run("revoke", "pos")

    listing = _run("list")

    lines = listing.splitlines()
    assert lines[0].split() == ["name", "prefix", "scopes", "created", "last", "used", "revoked"]
    assert "crm" in lines[1] and "members:read" in lines[1]
    assert "pos" in lines[2] and "orders:write" in lines[2]
    assert plain.split("_", 2)[2] not in listing


def test_revoke_makes_the_token_answer_401_and_is_audited():
    plain = _run("create", "crm", "--scope", "members:read")

    _run("revoke", "crm")

    assert Api(plain).get("/members").status_code == 401
    assert ApiToken.objects.get().revoked_at is not None
    assert list(AuditEntry.objects.order_by("id").values_list("action", "target_id")) == [
        ("api_token.create", str(ApiToken.objects.get().pk)),
        ("api_token.revoke", str(ApiToken.objects.get().pk)),
    ]


def test_revoking_an_unknown_token_fails():
    with pytest.raises(CommandError, match="no token named"):
        _run("revoke", "ghost")
