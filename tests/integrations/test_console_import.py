"""The console import page: same import as the CLI, for staff allowed to add the entity."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from siyu.commerce.models import Order
from siyu.core.models import IngestRejection
from tests.factories import make_user
from tests.integrations.files import TAOBAO_HEADER

pytestmark = pytest.mark.django_db

URL = "/console/import/"


def _taobao_upload() -> SimpleUploadedFile:
    rows = [TAOBAO_HEADER,
            ['="2931000000000001"', "tb_alice", "199.00", "209.00", "209.00", "交易成功", "138****1234",
             "2026-05-01 10:00:00", "2026-05-01 10:01:00", "纯棉T恤", "2", "50.00", ""],
            ['="2931000000000002"', "tb_bob", "99.00", "99.00", "99.00", "交易成功", "",
             "2026-05-99 10:00:00", "", "袜子", "1", "0", ""]]
    text = "\n".join(",".join(f'"{cell.replace(chr(34), chr(34) * 2)}"' for cell in row) for row in rows)
    return SimpleUploadedFile("ExportOrderList.csv", text.encode("gbk"), content_type="text/csv")


def _post(client, **fields):
    data = {"entity": "orders", "preset": "taobao", "channel": "tmall", "mapping": "", "file_format": "",
            "encoding": "", "file": _taobao_upload(), **fields}
    with translation.override("en"):
        return client.post(URL, data, HTTP_ACCEPT_LANGUAGE="en")


def test_staff_with_the_permission_import_a_file_and_see_the_result_and_the_rejects(tmall, client):
    client.force_login(make_user("ops", "commerce.add_order"))

    response = _post(client)

    assert response.status_code == 200
    assert list(Order.objects.values_list("external_id", "status")) == [("2931000000000001", "completed")]
    report = response.context["report"]
    assert (report.rows, report.created, report.duplicates, report.rejected_records) == (2, 1, 0, 1)
    [(reject, raw)] = response.context["rejects"]
    assert (reject.row, reject.field, reject.code) == (3, "ordered_at", "invalid_datetime")
    assert "2026-05-99 10:00:00" in raw
    html = response.content.decode()
    assert 'download="ExportOrderList.rejects.csv"' in html
    assert 'href="data:text/csv;charset=utf-8;base64,' in html
    assert list(IngestRejection.objects.values_list("row", "source")) == [(3, "import:ExportOrderList.csv")]


def test_the_page_renders_the_form_in_the_console(client):
    client.force_login(make_user("ops", "commerce.add_order"))

    response = client.get(URL, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert response.templates[0].name == "integrations/import.html"
    assert 'enctype="multipart/form-data"' in response.content.decode()


def test_anonymous_users_are_sent_to_the_login_page_and_nothing_is_imported(tmall, client):
    response = _post(client)

    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/?next=/console/import/")
    assert Order.objects.count() == 0


def test_staff_without_the_permission_to_add_orders_are_refused(tmall, client):
    client.force_login(make_user("viewer", "commerce.view_order"))

    response = _post(client)

    assert response.status_code == 403
    assert Order.objects.count() == 0


def test_non_staff_users_are_sent_to_the_login_page(tmall, client):
    client.force_login(make_user("shopper", "commerce.add_order", is_staff=False))

    response = _post(client)

    assert response.status_code == 302
    assert Order.objects.count() == 0


def test_an_import_that_cannot_start_shows_why_on_the_form(tmall, client):
    client.force_login(make_user("ops", "commerce.add_order"))

    response = _post(client, channel="")

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "the taobao preset needs a sales channel (--channel): the code of the Taobao/Tmall shop's channel"]
    assert (Order.objects.count(), IngestRejection.objects.count()) == (0, 0)
