import json as jsonlib

import pytest
from django.test import Client


class Api:
    """Django's test client speaking JSON to /api/v1 with a bearer token, in English.

    Messages are translated (zh-hans is the default language); tests that read a message
    read the English one.
    """

    def __init__(self, token: str | None = None):
        self.client = Client()
        self.token = token

    def _headers(self, token):
        token = self.token if token is None else token
        return {"Accept-Language": "en", **({"Authorization": f"Bearer {token}"} if token else {})}

    def get(self, path: str, *, token: str | None = None, **params):
        return self.client.get(f"/api/v1{path}", params, headers=self._headers(token))

    def post(self, path: str, body=None, *, token: str | None = None, raw: str | None = None):
        data = raw if raw is not None else jsonlib.dumps(body)
        return self.client.post(f"/api/v1{path}", data, content_type="application/json",
                                headers=self._headers(token))


@pytest.fixture
def token(db):
    from tests.factories import make_token

    return make_token("crm-sync")


@pytest.fixture
def api(token):
    return Api(token)
