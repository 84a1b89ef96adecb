"""WeCom (企业微信) through wechatpy's enterprise client: ``externalcontact/add_msg_template``.

That API is how a company messages its external contacts (客户): it creates a send task for a
staff member (``sender``, their WeCom userid = ``Staff.code``) and a list of customers
(``external_userid``), which the staff member confirms in the WeCom app. A 1:1 message is a task
with one customer; group send (群发) is one task for all the messages of a sender with the same
text. Customers WeCom cannot reach come back in ``fail_list`` (failed: ``unreachable``).
WeCom is at-most-once: a message whose worker died mid-send is failed with ``outcome_unknown``.

Settings: ``SIYU_WECOM_CORP_ID``, ``SIYU_WECOM_SECRET``, ``SIYU_WECOM_API_BASE`` (default
``https://qyapi.weixin.qq.com/cgi-bin/``; tests point it at a local fake server).
"""

from __future__ import annotations

from collections import defaultdict

import requests

from siyu.messaging.adapters import FAILED, RETRY, SENT, Adapter, Outcome, Prepared, setting
from siyu.messaging.models import Channel, Reason

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
MAX_PER_TASK = 10_000  # WeCom's limit of external_userid per task
TRANSIENT_ERRCODES = {-1, 45009, 45033, 42001, 40014, 41001}
_clients: dict[tuple, object] = {}


def client():
    """A wechatpy enterprise client for the configured corp (cached: it keeps the access token)."""
    from wechatpy.enterprise import WeChatClient

    corp_id, secret = setting("SIYU_WECOM_CORP_ID"), setting("SIYU_WECOM_SECRET")
    if not corp_id or not secret:
        return None
    base = setting("SIYU_WECOM_API_BASE", DEFAULT_API_BASE)
    if not base.endswith("/"):
        base += "/"
    key = (corp_id, secret, base)
    if key not in _clients:

        class Client(WeChatClient):
            API_BASE_URL = base

            def fetch_access_token(self):
                # wechatpy 1.8 hard-codes the gettoken URL; use the configured base like every other call
                return self._fetch_access_token(url=self.API_BASE_URL + "gettoken",
                                                params={"corpid": self.corp_id, "corpsecret": self.secret})

        _clients[key] = Client(corp_id, secret, timeout=10)
    return _clients[key]


def _error_outcome(error: Exception) -> Outcome:
    from wechatpy.exceptions import WeChatClientException

    if isinstance(error, WeChatClientException):
        code = error.errcode
        detail = f"WeCom errcode {code}: {error.errmsg}"[:500]
        if code is None or code in TRANSIENT_ERRCODES:
            return Outcome(RETRY, Reason.PROVIDER_ERROR, detail)
        return Outcome(FAILED, Reason.PROVIDER_REJECTED, detail)
    return Outcome(RETRY, Reason.PROVIDER_ERROR, f"{type(error).__name__}: {error}"[:500])


class WeComAdapter(Adapter):
    channel = Channel.WECOM
    batch_size = 1

    def send(self, messages: list[Prepared]) -> dict[int, Outcome]:
        from wechatpy.exceptions import WeChatClientException

        api = client()
        outcomes: dict[int, Outcome] = {}
        if api is None:
            return {m.id: Outcome(FAILED, Reason.NOT_CONFIGURED, "SIYU_WECOM_CORP_ID / SIYU_WECOM_SECRET are empty")
                    for m in messages}
        groups: dict[tuple[str, str], list[Prepared]] = defaultdict(list)
        for msg in messages:
            if not msg.sender or not msg.external_userid:
                outcomes[msg.id] = Outcome(FAILED, Reason.UNREACHABLE,
                                           "no active WeCom contact with an external_userid")
            else:
                groups[(msg.sender, msg.rendered.text)].append(msg)
        for (sender, text), group in groups.items():
            for start in range(0, len(group), MAX_PER_TASK):
                part = group[start:start + MAX_PER_TASK]
                task = {"chat_type": "single", "sender": sender, "text": {"content": text},
                        "external_userid": [m.external_userid for m in part]}
                try:
                    answer = api.external_contact.add_msg_template(task)
                except (WeChatClientException, requests.RequestException, ValueError) as error:
                    outcome = _error_outcome(error)
                    outcomes.update({m.id: outcome for m in part})
                    continue
                failed = set(answer.get("fail_list") or [])
                task_id = str(answer.get("msgid", ""))[:100]
                unreached = Outcome(FAILED, Reason.UNREACHABLE, "WeCom could not reach this customer", task_id)
                for m in part:
                    outcomes[m.id] = unreached if m.external_userid in failed else Outcome(SENT, provider_id=task_id)
        return outcomes


class WeComGroupSendAdapter(WeComAdapter):
    """群发: the claimed messages of one sender with the same text go out as one task."""

    channel = Channel.WECOM_GROUP_SEND
    batch_size = 1000
