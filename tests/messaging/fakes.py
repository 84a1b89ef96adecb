"""Local fake servers that speak the providers' protocols, for the real adapters to talk to.

Each runs on 127.0.0.1 on a free port in a thread, records what it received, and answers from a
script (``next_answers``) or with success.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from aiosmtpd.controller import Controller

from siyu.messaging.adapters.sms import aliyun_signature
from siyu.messaging.adapters.webhook import sign


class FakeHTTPServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.next_answers: list = []  # scripted answers, consumed first
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = {"method": self.command, "path": parts.path, "query": dict(parse_qsl(parts.query)),
                           "headers": dict(self.headers.items()), "body": body}
                with owner.lock:
                    owner.requests.append(request)
                    status, payload = owner.answer(request)
                data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, request: dict) -> tuple[int, object]:
        raise NotImplementedError

    def scripted(self):
        """The next scripted answer, if any (called where the real API call is answered)."""
        return self.next_answers.pop(0) if self.next_answers else None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeWeCom(FakeHTTPServer):
    """``/cgi-bin/gettoken`` and ``/cgi-bin/externalcontact/add_msg_template`` as WeCom answers them."""

    corp_id, secret = "wwcorp123", "corp-secret"

    def __init__(self):
        super().__init__()
        self.url += "cgi-bin/"
        self.tokens_issued = 0
        self.unreachable: set[str] = set()  # external_userids that come back in fail_list
        self.tasks: list[dict] = []

    def answer(self, request):
        if request["path"] == "/cgi-bin/gettoken":
            if (request["query"].get("corpid"), request["query"].get("corpsecret")) != (self.corp_id, self.secret):
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            self.tokens_issued += 1
            return 200, {"errcode": 0, "errmsg": "ok", "access_token": f"token-{self.tokens_issued}",
                         "expires_in": 7200}
        if request["path"] == "/cgi-bin/externalcontact/add_msg_template":
            if request["query"].get("access_token") != f"token-{self.tokens_issued}":
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            if (scripted := self.scripted()) is not None:
                return scripted
            task = json.loads(request["body"])
            self.tasks.append(task)
            fail = [e for e in task["external_userid"] if e in self.unreachable]
            return 200, {"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": f"msg{len(self.tasks):04d}"}
        return 404, {"errcode": 404, "errmsg": "not found"}


class FakeAliyunSms(FakeHTTPServer):
    """Aliyun's ``SendSms`` RPC endpoint: checks the signature like the real one, then answers."""

    access_key_id, secret = "LTAIkey", "aliyun-secret"

    def __init__(self):
        super().__init__()
        self.sent: list[dict] = []

    def answer(self, request):
        params = dict(request["query"])
        signature = params.pop("Signature", "")
        if params.get("AccessKeyId") != self.access_key_id:
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
        if signature != aliyun_signature(params, self.secret):
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
        if params.get("Action") != "SendSms":
            return 400, {"Code": "InvalidAction", "Message": "unknown action"}
        if (scripted := self.scripted()) is not None:
            return scripted
        self.sent.append(params)
        return 200, {"Code": "OK", "Message": "OK", "RequestId": "req", "BizId": f"{len(self.sent)}^0"}


class FakeWebhookReceiver(FakeHTTPServer):
    """A receiver that verifies the signature and records each delivery id it accepted."""

    secret = "hook-secret"

    def __init__(self):
        super().__init__()
        self.accepted: list[dict] = []

    def answer(self, request):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        expected = sign(self.secret, headers.get("x-siyu-timestamp", ""), request["body"])
        if headers.get("x-siyu-signature") != expected:
            return 401, {"error": "bad signature"}
        if (scripted := self.scripted()) is not None:
            return scripted
        self.accepted.append({"delivery": headers["x-siyu-delivery"], "json": json.loads(request["body"])})
        return 200, {"ok": True}


class _Mailbox:
    def __init__(self):
        self.messages: list = []
        self.refuse: dict[str, str] = {}  # address -> SMTP answer, e.g. "550 5.1.1 no such user"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


class FakeSmtp:
    def __init__(self):
        self.mailbox = _Mailbox()
        with socket.socket() as probe:  # aiosmtpd's start() connects to the port it was given: pick one
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self):
        return self.mailbox.messages

    def close(self):
        self.controller.stop()
