"""Templates: checked when saved, rendered with only the allowed variables, escaped for email."""

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import translation

from siyu.core.errors import ValidationError
from siyu.messaging.models import Channel, MessageTemplate
from siyu.messaging.rendering import check_template, render


@pytest.mark.parametrize(("body", "code", "culprit"), [
    ("您好 {{ password }}", "unknown_variable", "password"),
    ("{% if secret %}x{% endif %}", "unknown_variable", "secret"),
    ("{{ member_name|default:phone }}", "unknown_variable", "phone"),
    ("{{ member_name|safe }}", "unsafe_filter", "safe"),
    ('{% include "admin/base.html" %}', "tag_not_allowed", "include"),
    ("{% for x in tier %}{{ x }}{% endfor %}", "tag_not_allowed", "for"),
    ("{% load static %}", "template_syntax", "static"),
    ("{{ member_name|nosuchfilter }}", "template_syntax", "nosuchfilter"),
    ("{% if %}x{% endif %}", "template_syntax", "if"),
])
def test_unsafe_or_unknown_template_parts_are_refused_with_the_culprit(body, code, culprit):
    with pytest.raises(ValidationError) as error:
        check_template(body)
    assert (error.value.code, error.value.field) == (code, "body")
    assert culprit in error.value.message


def test_allowed_variables_are_reported():
    used = check_template("{{ member_name }} {% if points > 100 %}{{ points|floatformat:0 }}{% endif %}").variables
    assert used == {"member_name", "points"}


@pytest.mark.django_db
def test_saving_a_template_with_an_unknown_variable_fails_at_save_time_in_the_console_form():
    template = MessageTemplate(code="bad", name="bad", channel=Channel.SMS, provider_template="SMS_1",
                               body="{{ member_name }} 的手机 {{ phone }}")
    with translation.override("en"), pytest.raises(DjangoValidationError) as error:
        template.full_clean()
    assert "unknown variable phone" in error.value.message_dict["body"][0]


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "field"), [
    ({"channel": Channel.SMS, "provider_template": ""}, "provider_template"),
    ({"channel": Channel.WEBHOOK, "webhook_url": ""}, "webhook_url"),
    ({"channel": Channel.EMAIL, "subject": ""}, "subject"),
    ({"channel": Channel.WECOM_GROUP_SEND, "body": "{{ member_name }} 您好"}, "body"),
])
def test_each_channel_s_required_settings_are_checked(fields, field):
    values = {"code": "t", "name": "t", "body": "您好", "channel": Channel.WECOM, **fields}
    with pytest.raises(DjangoValidationError) as error:
        MessageTemplate(**values).full_clean()
    assert field in error.value.message_dict


def test_plain_text_is_not_escaped_and_unknown_context_is_dropped():
    rendered = render(body="{{ member_name }} & {{ coupon_code }}{{ other }}",
                      variables={"member_name": "<李>", "coupon_code": "A&B", "other": "leak"})
    assert rendered.text == "<李> & A&B"


def test_html_email_escapes_member_data():
    rendered = render(body='<a href="https://x.cn/?c={{ coupon_code }}">{{ member_name }}</a>', html=True,
                      subject="给 {{ member_name }}", variables={"member_name": "<img src=x onerror=1>",
                                                                "coupon_code": '"><script>'})
    assert rendered.html == ('<a href="https://x.cn/?c=&quot;&gt;&lt;script&gt;">'
                             "&lt;img src=x onerror=1&gt;</a>")
    assert rendered.text == "<img src=x onerror=1>"
    assert rendered.subject == "给 <img src=x onerror=1>"
