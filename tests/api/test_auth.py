"""Bearer tokens on /api/v1: 401 without a valid token, 403 without the scope, nothing written."""

import datetime as dt

import pytest
from django.utils import timezone

from siyu.core.models import ApiToken, IngestRejection
from siyu.core.tokens import revoke_token
from siyu.members.models import Member
from tests.api.conftest import Api
from tests.factories import make_token

pytestmark = pytest.mark.django_db

MEMBER_ROWS = {"rows": [{"phone": "13800138000", "name": "王小明"}]}


def _error(response) -> dict:
    return response.json()["error"]


def test_no_token_is_401_with_the_error_body():
    response = Api().post("/members/batch", MEMBER_ROWS)

    assert response.status_code == 401
    assert _error(response) == {"code": "missing_token", "message": _error(response)["message"], "field": None}
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Member.objects.count() == 0


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer siyu_abc_def", "Token siyu_x_y", "Bearer "])
def test_a_malformed_or_unknown_token_is_401(header):
    client = Api().client

    response = client.post("/api/v1/members/batch", MEMBER_ROWS, content_type="application/json",
                           headers={"Authorization": header})

    assert response.status_code == 401
    assert _error(response)["code"] in {"invalid_token", "missing_token"}
    assert Member.objects.count() == 0


def test_a_token_with_a_wrong_secret_is_401():
    plain = make_token("pos", "members:write")
    tampered = plain[:-4] + ("aaaa" if not plain.endswith("aaaa") else "bbbb")

    response = Api(tampered).post("/members/batch", MEMBER_ROWS)

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_token"


def test_a_revoked_token_is_401_and_writes_nothing():
    plain = make_token("old-crm", "members:write")
    revoke_token(name="old-crm", actor="test")

    response = Api(plain).post("/members/batch", MEMBER_ROWS)

    assert response.status_code == 401
    assert _error(response)["code"] == "token_revoked"
    assert Member.objects.count() == 0


def test_a_token_without_the_scope_is_403_and_writes_nothing():
    plain = make_token("shop", "orders:write")

    response = Api(plain).post("/members/batch", MEMBER_ROWS)

    assert response.status_code == 403
    assert _error(response)["code"] == "insufficient_scope"
    assert "members:write" in _error(response)["message"]
    assert Member.objects.count() == 0
    assert IngestRejection.objects.count() == 0


def test_the_scope_is_checked_before_the_body():
    plain = make_token("shop", "orders:write")

    response = Api(plain).post("/members/batch", raw="{not json")

    assert response.status_code == 403


def test_a_read_scope_cannot_write():
    plain = make_token("bi", "members:read", "orders:read", "events:read")
    api = Api(plain)

    for path in ("/members/batch", "/contacts/batch", "/orders/batch", "/events/batch"):
        response = api.post(path, {"rows": []})
        assert (path, response.status_code, _error(response)["code"]) == (path, 403, "insufficient_scope")


def test_a_write_scope_implies_read():
    plain = make_token("crm", "members:write")

    assert Api(plain).get("/members").status_code == 200


def test_a_read_scope_reads():
    plain = make_token("bi", "members:read")

    assert Api(plain).get("/members").status_code == 200
    assert Api(plain).get("/members/1").status_code == 404


def test_last_used_is_written_at_most_once_a_minute(monkeypatch):
    plain = make_token("bi", "members:read")
    api = Api(plain)
    start = timezone.now()

    api.get("/members")
    first = ApiToken.objects.get().last_used_at
    api.get("/members")
    second = ApiToken.objects.get().last_used_at
    monkeypatch.setattr(timezone, "now", lambda: start + dt.timedelta(minutes=2))
    api.get("/members")
    third = ApiToken.objects.get().last_used_at

    assert first is not None and first >= start
    assert second == first
    assert third == start + dt.timedelta(minutes=2)


def test_one_request_with_a_fresh_token_costs_one_lookup(django_assert_num_queries):
    plain = make_token("bi", "members:read")
    api = Api(plain)
    api.get("/members")  # records last use

    with django_assert_num_queries(2):  # the token, the page
        assert api.get("/members").status_code == 200
