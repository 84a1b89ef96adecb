"""The OpenAPI document and docs page stay public and show the bearer scheme."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_docs_page_responds():
    assert Client().get("/api/v1/docs").status_code == 200


def test_the_openapi_document_shows_the_bearer_scheme_and_every_operation():
    schema = Client().get("/api/v1/openapi.json").json()

    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    paths = schema["paths"]
    for path, method in [("/api/v1/members/batch", "post"), ("/api/v1/orders/batch", "post"),
                         ("/api/v1/events/batch", "post"), ("/api/v1/contacts/batch", "post"),
                         ("/api/v1/members", "get"), ("/api/v1/members/{ref}", "get")]:
        assert paths[path][method]["security"] == [{"BearerToken": []}]
    order_rows = schema["components"]["schemas"]["OrderBatchIn"]["properties"]["rows"]
    assert "external_id" in order_rows["items"]["properties"]


def test_the_bearer_scheme_lists_every_scope_area():
    from siyu.core.tokens import SCOPE_AREAS

    description = Client().get("/api/v1/openapi.json").json()["components"]["securitySchemes"]["BearerToken"][
        "description"]

    for area in SCOPE_AREAS:
        assert area in description
