"""SMS: a provider interface and one real provider, Aliyun SMS (阿里云短信, ``SendSms``).

The Aliyun provider speaks the RPC API as documented: a GET with the common parameters
(``AccessKeyId``, ``SignatureNonce``, ``Timestamp`` …) and the call's (``PhoneNumbers``,
``SignName``, ``TemplateCode``, ``TemplateParam`` as JSON, ``OutId`` = the outbox id), signed with
HMAC-SHA1 over the percent-encoded, sorted query (signature version 1.0). Chinese SMS templates
are registered with the provider, so the message sends the template's provider code and the
variables; the rendered text is kept in the outbox for history. SMS is at-most-once: a message
whose worker died mid-send is failed with ``outcome_unknown``, never sent twice.

Settings: ``SIYU_SMS_ACCESS_KEY_ID``, ``SIYU_SMS_ACCESS_KEY_SECRET``, ``SIYU_SMS_SIGN_NAME``,
``SIYU_SMS_ENDPOINT`` (default ``https://dysmsapi.aliyuncs.com/``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from urllib.parse import quote

import requests

from siyu.messaging.adapters import FAILED, RETRY, SENT, Adapter, Outcome, Prepared, setting
from siyu.messaging.models import Channel, Reason

TIMEOUT = 10
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
#: Aliyun answer codes worth another try later (flow control, provider-side faults).
TRANSIENT_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User", "isp.SYSTEM_ERROR",
                   "ServiceUnavailable", "InternalError"}


class SmsProvider:
    """Sends one SMS; returns an Outcome (SENT with the provider's id, RETRY or FAILED)."""

    def send(self, *, phone: str, template_code: str, params: dict, out_id: str) -> Outcome:
        raise NotImplementedError


def percent_encode(value: str) -> str:
    return quote(str(value), safe="~")


def aliyun_signature(params: dict, secret: str, method: str = "GET") -> str:
    """The RPC signature (v1.0) of ``params`` (without ``Signature``)."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSms(SmsProvider):
    def __init__(self, *, access_key_id: str, access_key_secret: str, sign_name: str, endpoint: str = DEFAULT_ENDPOINT):
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.sign_name = sign_name
        self.endpoint = endpoint

    def send(self, *, phone: str, template_code: str, params: dict, out_id: str) -> Outcome:
        query = {
            "AccessKeyId": self.access_key_id, "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
            "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
            "PhoneNumbers": phone, "SignName": self.sign_name, "TemplateCode": template_code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")), "OutId": out_id,
        }
        query["Signature"] = aliyun_signature(query, self.access_key_secret)
        try:
            response = requests.get(self.endpoint, params=query, timeout=TIMEOUT)
        except requests.RequestException as error:
            return Outcome(RETRY, Reason.PROVIDER_ERROR, f"{type(error).__name__}: {error}"[:500])
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        code = str(answer.get("Code", ""))
        detail = f"HTTP {response.status_code} {code}: {answer.get('Message', response.text[:200])}"[:500]
        if response.status_code == 200 and code == "OK":
            return Outcome(SENT, provider_id=str(answer.get("BizId", ""))[:100])
        if response.status_code >= 500 or code in TRANSIENT_CODES or code.startswith("isp."):
            return Outcome(RETRY, Reason.PROVIDER_ERROR, detail)
        return Outcome(FAILED, Reason.PROVIDER_REJECTED, detail)


def provider() -> SmsProvider | None:
    key, secret = setting("SIYU_SMS_ACCESS_KEY_ID"), setting("SIYU_SMS_ACCESS_KEY_SECRET")
    if not key or not secret:
        return None
    return AliyunSms(access_key_id=key, access_key_secret=secret, sign_name=setting("SIYU_SMS_SIGN_NAME"),
                     endpoint=setting("SIYU_SMS_ENDPOINT", DEFAULT_ENDPOINT))


class SmsAdapter(Adapter):
    channel = Channel.SMS

    def send(self, messages: list[Prepared]) -> dict[int, Outcome]:
        sms = provider()
        outcomes = {}
        for msg in messages:
            if sms is None or not msg.provider_template:
                outcomes[msg.id] = Outcome(FAILED, Reason.NOT_CONFIGURED,
                                           "SMS credentials or the template's provider code are missing")
                continue
            params = {k: str(v) for k, v in msg.variables.items() if v not in (None, "")}
            outcomes[msg.id] = sms.send(phone=msg.phone, template_code=msg.provider_template, params=params,
                                        out_id=str(msg.id))
        return outcomes
