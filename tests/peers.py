"""Real peers for the notification tests, all listening on 127.0.0.1 only.

A webhook receiver (stdlib HTTP server), the real Prometheus Alertmanager binary, and an SMTP
server (aiosmtpd): the notification code talks to them over real sockets, so what is tested is
what goes over the wire.

The fixtures are http_receiver, alertmanager and smtp_server: load them all with
`pytest_plugins = ["peers"]` in tests/conftest.py, or import them into a test module by their
function names, *_fixture (which do not clash with the parameters naming the fixtures).
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for peers that need it up front)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _poll(check: Callable[[], bool], timeout: float) -> bool:
    """Whether `check()` became true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


_PeerT = TypeVar("_PeerT", bound="_Peer")


class _Peer(ABC):
    """A peer starts when made; used as a context manager, it stops on exit."""

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self: _PeerT) -> _PeerT:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- webhooks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the HttpReceiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased: look them up as request.headers["content-type"]
    body: bytes
    json: Any  # the body parsed, None when it is not JSON
    received_at: float  # time.monotonic() when it arrived
    status: int  # the status answered, as decided on arrival (so even if the client gave up)

    def __str__(self) -> str:
        shown = self.body.decode("utf-8", errors="replace") if self.json is None else self.json
        return f"{self.method} {self.path} -> {self.status}: {shown!r}"


class _Handler(BaseHTTPRequestHandler):
    """Answers every method alike, reading bodies by Content-Length (chunked ones are not read).

    HTTP/1.0: one request per connection, so no kept-alive connection outlives `down()`.
    """

    def __init__(self, receiver: HttpReceiver, *args: Any) -> None:
        self.receiver = receiver
        super().__init__(*args)

    def respond(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, delay, retry_after, text = self.receiver._record(self, body)
        self.receiver._closing.wait(delay)
        with suppress(ConnectionError):  # the client gave up, e.g. timed out on a slow answer
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = respond

    def log_message(self, format: str, *args: Any) -> None:
        """Keep quiet: the tests look at `HttpReceiver.requests` instead."""


class _Server(ThreadingHTTPServer):
    # server_close() then waits for the requests being answered, leaving no thread behind.
    daemon_threads = False
    # Re-binding the port in up() works at once, whatever connections linger in TIME_WAIT.
    allow_reuse_address = True


class HttpReceiver(_Peer):
    """A webhook (or Slack incoming-webhook) endpoint on 127.0.0.1 that records what it gets.

    Its behaviour can be changed while the test runs: `answer()` a status, `answer_when()`
    a request's JSON matches, `delay()` answers, go `down()` (connections refused) and come
    back `up()` on the same port.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._status = 200
        self._retry_after: str | None = None
        self._special: tuple[Callable[[Any], bool], int, bytes | None] | None = None
        self._delay = 0.0
        self._closing = threading.Event()  # cuts delays short when the receiver is stopped
        self._port = 0  # any free port at first, the same one after down() and up()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.up()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._port}/hook"

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def accepted(self) -> list[Any]:
        """The JSON bodies of the requests answered with a 2xx status, in order."""
        return [request.json for request in self.requests if 200 <= request.status < 300]

    def answer(self, status: int, retry_after: str | None = None) -> None:
        """Answer the following requests with `status` (200 at first), and a Retry-After
        header if given."""
        with self._lock:
            self._status, self._retry_after = status, retry_after

    def answer_when(
        self, matches: Callable[[Any], bool] | None, status: int = 200, body: bytes | None = None
    ) -> None:
        """Answer the following requests whose JSON body `matches` with `status` (and `body`,
        if given), whatever `answer()` says for the others; None: no longer."""
        with self._lock:
            self._special = None if matches is None else (matches, status, body)

    def delay(self, seconds: float) -> None:
        """Wait this long before answering the following requests (0 at first)."""
        with self._lock:
            self._delay = seconds

    def up(self) -> None:
        """Listen (again, on the same port)."""
        if self._server is not None:
            return
        self._server = _Server((HOST, self._port), partial(_Handler, self))
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: connections are refused. Requests in progress are answered first."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def stop(self) -> None:
        """Go down for good, without waiting out delays."""
        self._closing.set()
        self.down()

    def _record(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, float, str | None, bytes]:
        """Note a request (called by the handler) and say how to answer it: status, delay,
        Retry-After, body."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        with self._lock:
            status, text = self._status, None
            if self._special is not None and self._special[0](parsed):
                _, status, text = self._special
            if text is None:
                text = b"ok" if 200 <= status < 300 else f"status {status}".encode()
            request = ReceivedRequest(
                method=handler.command,
                path=handler.path,
                headers={name.lower(): value for name, value in handler.headers.items()},
                body=body,
                json=parsed,
                received_at=time.monotonic(),
                status=status,
            )
            self._requests.append(request)
            return status, self._delay, self._retry_after, text

    def wait_for(self, predicate: Callable[[HttpReceiver], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate(self)` holds; fail the test, showing what came, if it doesn't."""
        if not _poll(lambda: predicate(self), timeout):
            received = "\n".join(f"  {request}" for request in self.requests) or "  nothing"
            pytest.fail(f"the HTTP receiver waited {timeout} s in vain; it received:\n{received}")


def changes_told(receiver: HttpReceiver) -> list[tuple[str, str, str]]:
    """(status, server, change) of each webhook notice the receiver took."""
    return [
        (
            body["status"],
            body["commonLabels"].get("server", ""),
            body["alerts"][0]["annotations"]["change"],
        )
        for body in receiver.accepted()
    ]


@pytest.fixture(name="http_receiver")
def http_receiver_fixture() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


# -- Alertmanager ---------------------------------------------------------------------------------

ALERTMANAGER_CONFIG = """\
route:
  receiver: "null"
  group_wait: 100ms
receivers:
  - name: "null"
"""
NOTIFYING_CONFIG = """\
route:
  receiver: hook
  group_by: ["..."]  # each alert a group of its own
  group_wait: 100ms
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs: [{{url: "{url}", send_resolved: true}}]
"""


def _alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        pytest.fail(
            "Prometheus Alertmanager is not installed: "
            "install the Debian package prometheus-alertmanager"
        )
    return found


class Alertmanager(_Peer):
    """The real Prometheus Alertmanager, alone (no clustering), notifying nobody, or the
    webhook at `notify` of each alert firing and resolved.

    Alerts posted to it can be read back with `alerts()`.
    """

    def __init__(
        self, workdir: Path, ready_timeout: float = 20.0, notify: str | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "alertmanager.yml"
        config.write_text(
            ALERTMANAGER_CONFIG if notify is None else NOTIFYING_CONFIG.format(url=notify)
        )
        self._log = workdir / "alertmanager.log"
        address = f"{HOST}:{free_port()}"
        self.url = f"http://{address}"
        with self._log.open("wb") as log:  # a file, not a pipe that could fill up and block it
            self._process = subprocess.Popen(
                [
                    _alertmanager_binary(),
                    f"--config.file={config}",
                    f"--storage.path={workdir / 'data'}",
                    f"--web.listen-address={address}",
                    "--cluster.listen-address=",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._http = httpx.Client(base_url=self.url, timeout=5.0)  # reused: a client costs 50 ms
        ready = _poll(self._ready_or_exited, ready_timeout)
        exit_status = self._process.returncode
        if not ready or exit_status is not None:
            self.stop()
            if exit_status is None:
                why = f"not ready in {ready_timeout} s"
            else:
                why = f"exited with status {exit_status}"
            pytest.fail(f"Alertmanager did not start ({why}); its output:\n{self._log.read_text()}")

    def _ready_or_exited(self) -> bool:
        """Whether waiting for it is over: it answers /-/ready, or it exited."""
        if self._process.poll() is not None:
            return True
        try:
            return self._http.get("/-/ready", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def alerts(
        self,
        active: bool | None = None,
        silenced: bool | None = None,
        inhibited: bool | None = None,
        unprocessed: bool | None = None,
        matchers: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """GET /api/v2/alerts. A None flag is left out (Alertmanager takes it as true);
        `matchers` (like 'alertname="Down"') become `filter` parameters.

        Resolved alerts (endsAt in the past) are never listed, whatever the flags.
        """
        flags = {
            "active": active,
            "silenced": silenced,
            "inhibited": inhibited,
            "unprocessed": unprocessed,
        }
        params: dict[str, Any] = {name: flag for name, flag in flags.items() if flag is not None}
        params["filter"] = list(matchers)
        response = self._http.get("/api/v2/alerts", params=params)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def stop(self) -> None:
        self._http.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@pytest.fixture(name="alertmanager")
def alertmanager_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    with Alertmanager(tmp_path_factory.mktemp("alertmanager")) as peer:
        yield peer


# -- SMTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SmtpServer got it: the envelope, and the message parsed."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpServer(_Peer):
    """An SMTP server on 127.0.0.1 that keeps the mail it is given.

    `starttls`: offer and require STARTTLS, with a self-signed certificate for 127.0.0.1 that
    clients can verify against `ca_file`. `credentials`: require AUTH (PLAIN or LOGIN) with this
    user and password, after STARTTLS if it is on, otherwise over the plain connection.
    (Without credentials, mail needs no AUTH, and an attempt at it is refused.)
    """

    def __init__(
        self,
        workdir: Path,
        starttls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._condition = threading.Condition()
        self._messages: list[ReceivedMail] = []
        self._login: LoginPassword | None = None
        if credentials is not None:
            user, password = credentials
            self._login = LoginPassword(user.encode(), password.encode())
        self.host = HOST
        self.port = free_port()
        self.ca_file: Path | None = None
        tls_context = None
        if starttls:
            self.ca_file, key_file = _self_signed_certificate(workdir)
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(self.ca_file, key_file)
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            server_hostname="localhost",  # else aiosmtpd asks socket.getfqdn(), maybe slowly
            tls_context=tls_context,
            require_starttls=starttls,
            authenticator=self._authenticate,
            auth_require_tls=starttls,
        )
        self._controller.start()

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._condition:
            return list(self._messages)

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages came; fail the test if they don't."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._messages) >= count, timeout):
                pytest.fail(f"{len(self._messages)} mail(s) came in {timeout} s, not {count}")
            return list(self._messages)

    def stop(self) -> None:
        if self._controller.loop.is_running():
            self._controller.stop()

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """aiosmtpd's hook for MAIL FROM: no mail without AUTH when there are credentials.

        (Not aiosmtpd's auth_required=True: that warns when AUTH goes over a plain connection.)
        """
        if self._login is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook for a message received."""
        assert envelope.mail_from is not None
        assert envelope.original_content is not None
        # Lines end in CRLF on the wire; in Python, and in a mailbox, they end in LF.
        content = envelope.original_content.replace(b"\r\n", b"\n")
        message = BytesParser(EmailMessage, policy=default_policy).parsebytes(content)
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message)
        with self._condition:
            self._messages.append(mail)
            self._condition.notify_all()
        return "250 OK"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        # handled=False: aiosmtpd answers a failure itself (535 ... credentials invalid).
        return AuthResult(success=data == self._login, handled=False)


def _self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """A certificate for IP 127.0.0.1 (it is its own CA) and its key."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    command = f"openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN={HOST}".split()
    subprocess.run(
        [*command, "-addext", f"subjectAltName=IP:{HOST}", "-keyout", key, "-out", cert],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


class SmtpServerFactory(Protocol):
    """The type of the smtp_server fixture."""

    def __call__(
        self, starttls: bool = False, credentials: tuple[str, str] | None = None
    ) -> SmtpServer: ...


@pytest.fixture(name="smtp_server")
def smtp_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServerFactory]:
    """Makes SMTP servers, stopped after the test."""
    servers: list[SmtpServer] = []

    def make(starttls: bool = False, credentials: tuple[str, str] | None = None) -> SmtpServer:
        server = SmtpServer(tmp_path_factory.mktemp("smtp"), starttls, credentials)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
