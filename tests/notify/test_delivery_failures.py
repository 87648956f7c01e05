"""Failures typed: a notice a receiver refuses for good is dropped at once, not retried; a
notice being retried holds back only its own alert's later notices, never other alerts'."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from peers import Alertmanager, HttpReceiver, ReceivedRequest
from test_notify import episode

from sereno.engine.engine import EngineState
from sereno.engine.windows import Watermark
from sereno.events.schema import Event
from sereno.notify.config import NotifyConfig, ReceiverSpec, Timing
from sereno.notify.delivery import Delivery, NoticeOutbox, notice_outbox
from sereno.notify.email import smtp_failure
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.notify.senders import build_sender
from sereno.notify.transport import DeliveryError, JsonPoster, is_retryable_status
from sereno.rules.rulefmt import load_default_rules
from sereno.state.store import Snapshot, StateStore, create

from conftest import SAMPLE, Server, event, run_sereno

RULES = load_default_rules()
DISK = "Disk consumption exceeds 90%"
T0 = 1476057600
# a backoff so long that a notice waiting it out would be seen to hold everything up
PATIENT = Timing(timeout=2, retry_backoff=60, retry_backoff_max=60)
FAST = Timing(timeout=2, retry_backoff=0.05, retry_backoff_max=0.2)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (301, True),  # not followed: the URL may be put right meanwhile
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (408, True),  # request timeout
        (409, False),
        (410, False),
        (413, False),
        (422, False),
        (425, True),  # too early
        (429, True),  # too many requests
        (500, True),
        (502, True),
        (503, True),
        (504, True),
    ],
)
def test_an_http_answer_is_retried_unless_it_says_the_request_is_wrong(
    status: int, retryable: bool
) -> None:
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("error", "retryable", "receiver_wide"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True, True),
        (TimeoutError("timed out"), True, True),
        (smtplib.SMTPServerDisconnected("gone"), True, True),
        (smtplib.SMTPConnectError(421, b"busy"), True, True),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), True, True),
        (smtplib.SMTPSenderRefused(530, b"authentication required", "s@x"), True, True),
        (smtplib.SMTPSenderRefused(451, b"try later", "s@x"), True, False),
        (smtplib.SMTPSenderRefused(553, b"no such sender", "s@x"), False, False),
        (smtplib.SMTPRecipientsRefused({"o@x": (550, b"no such user")}), False, False),
        (smtplib.SMTPRecipientsRefused({"o@x": (450, b"mailbox busy")}), True, False),
        (
            smtplib.SMTPRecipientsRefused({"a@x": (550, b"no"), "b@x": (452, b"full")}),
            True,
            False,
        ),
        (smtplib.SMTPDataError(554, b"spam"), False, False),
        (smtplib.SMTPDataError(451, b"local error"), True, False),
    ],
    ids=lambda value: value if isinstance(value, bool) else type(value).__name__,
)
def test_an_smtp_failure_is_retried_unless_the_message_is_refused_for_good(
    error: Exception, retryable: bool, receiver_wide: bool
) -> None:
    failure = smtp_failure(error, "smtp://mail:25")
    assert (failure.retryable, failure.receiver_wide) == (retryable, receiver_wide)
    assert str(failure).startswith("smtp://mail:25: ")


def change(server: str, status: str = "firing", at: int = T0, started: int = T0) -> Notice:
    """A notice of the disk alert of `server` (its own alert)."""
    return Notice(
        status,
        "fired" if status == "firing" else "resolved",
        DISK,
        "MEDIUM",
        "web",
        server,
        "DiskUsedPercentage",
        0.95,
        f"{server} {status} at {at}",
        "",
        started,
        at,
        ended=at if status == "resolved" else None,
    )


def queued(tmp_path: Path, receiver: str, notices: list[Notice]) -> NoticeOutbox:
    """An outbox holding `notices` for `receiver`, in this order."""
    db = tmp_path / "sereno.db"
    create(db)
    store = StateStore(db, Event)
    snapshot = Snapshot(0, Watermark(float("-inf"), float("-inf")), EngineState())
    store.checkpoint(snapshot, [], outgoing=[(receiver, notice) for notice in notices])
    store.close()
    return notice_outbox(db)


def deliver(outbox: NoticeOutbox, spec: ReceiverSpec, logged: list[str]) -> Delivery:
    delivery = Delivery(
        outbox,
        [spec],
        {spec.name: build_sender(spec)},
        Planner(NotifyConfig("test", (spec,)), RULES),
        log=logged.append,
    )
    delivery.start()
    return delivery


def about(server: str) -> Callable[[Any], bool]:
    """Whether a webhook body is about `server`'s alert."""
    return lambda body: body["commonLabels"].get("server") == server


def requests_about(server: str, receiver: HttpReceiver) -> list[ReceivedRequest]:
    return [request for request in receiver.requests if about(server)(request.json)]


def summaries(receiver: HttpReceiver) -> list[str]:
    return [body["commonAnnotations"]["summary"] for body in receiver.accepted()]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.01)


def test_a_notice_the_receiver_refuses_is_dropped_at_once_and_the_others_go_on(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    http_receiver.answer_when(about("bad"), 400, b"invalid label " + b"x" * 300)
    refused = [change("bad"), change("bad", "resolved", T0 + 60)]
    outbox = queued(
        tmp_path,
        "ops",
        [refused[0], change("good1"), refused[1], change("good2"), change("good3")],
    )
    logged: list[str] = []
    delivery = deliver(
        outbox, ReceiverSpec("ops", "webhook", http_receiver.url, timing=PATIENT), logged
    )
    try:
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 3)
        counts = delivery.counts["ops"]
        wait_until(lambda: counts.rejected == 2, "both of the bad alert's notices dropped")
    finally:
        delivery.stop()
    assert summaries(http_receiver) == [f"good{n} firing at {T0}" for n in (1, 2, 3)]
    assert (counts.sent, counts.rejected, counts.expired, counts.dropped) == (3, 2, 0, 2)
    assert delivery.depths() == {"ops": 0}
    answer = "invalid label " + "x" * (200 - len("invalid label "))  # its first 200 bytes
    assert logged == [
        f"sereno: notify ops: dropped a notification, refused: {http_receiver.url} answered "
        f"400 Bad Request: {answer}; it was: {notice.text}"
        for notice in refused
    ]


def test_a_notice_being_retried_holds_back_only_its_own_alert(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    http_receiver.answer_when(about("bad"), 503)
    outbox = queued(
        tmp_path,
        "ops",
        [change("bad"), change("good1"), change("bad", "resolved", T0 + 60), change("good2")],
    )
    logged: list[str] = []
    spec = ReceiverSpec("ops", "webhook", http_receiver.url, timing=FAST)
    delivery = deliver(outbox, spec, logged)
    try:
        # the other alert's notices go by while the bad one's first is retried
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 2)
        assert summaries(http_receiver) == [f"good1 firing at {T0}", f"good2 firing at {T0}"]
        http_receiver.wait_for(lambda r: len(requests_about("bad", r)) >= 3)
        # its resolved waits behind its firing, which was never taken
        assert {request.json["status"] for request in requests_about("bad", http_receiver)} == {
            "firing"
        }
        http_receiver.answer_when(None)
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 4)
    finally:
        delivery.stop()
    assert summaries(http_receiver)[2:] == [f"bad firing at {T0}", f"bad resolved at {T0 + 60}"]
    counts = delivery.counts["ops"]
    assert counts.sent == 4 and counts.failed >= 3 and counts.dropped == 0
    assert logged[0] == (
        f"sereno: notify ops: {http_receiver.url} answered 503 Service Unavailable: status 503; "
        "retrying with backoff"
    )
    assert sum("retrying" in line for line in logged) == 1  # once, not at every retry


def test_alertmanager_refusing_a_batch_for_one_alert_gets_the_others_one_by_one(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    # an alert that ends before it starts: Alertmanager refuses the batch it is in (400),
    # taking the others
    bad = change("bad", "resolved", T0, started=T0 + 600)
    outbox = queued(tmp_path, "am", [change("good1"), bad, change("good2")])
    logged: list[str] = []
    delivery = deliver(
        outbox, ReceiverSpec("am", "alertmanager", alertmanager.url, timing=PATIENT), logged
    )
    counts = delivery.counts["am"]
    try:
        wait_until(lambda: counts.sent + counts.rejected == 3, "every notice sent or dropped")
    finally:
        delivery.stop()
    assert (counts.sent, counts.rejected) == (2, 1)
    (line,) = logged
    assert line.startswith(
        f"sereno: notify am: dropped a notification, refused: {alertmanager.url}/api/v2/alerts "
        "answered 400 Bad Request: "
    )
    assert line.endswith(f"; it was: {bad.text}")
    servers = sorted(alert["labels"]["server"] for alert in alertmanager.alerts())
    assert servers == ["good1", "good2"]


def test_serve_counts_and_logs_a_refused_notice_and_tells_the_others(
    start_server: Callable[..., Server],
    write_file: Callable[[str, str], Path],
    http_receiver: HttpReceiver,
) -> None:
    http_receiver.answer_when(about("reporting_pdf02"), 422, b"no thanks")
    config = write_file(
        "sereno.yaml",
        f"receivers: [{{name: ops, type: webhook, url: '{http_receiver.url}', "
        "retry_backoff: 1h, retry_backoff_max: 1h}]",
    )
    server = start_server("--config", str(config))
    pushed = run_sereno("push", SAMPLE, "--url", f"{server.url}/events", "--batch", "10")
    assert pushed.returncode == 0, pushed.stderr
    server.post_lines(event(component="DiskUsedPercentage", value=0.1, timestamp=T0 + 400))
    # the sample's 8 changes: 4 of them reporting_pdf02's disk alert
    http_receiver.wait_for(lambda r: len(r.accepted()) >= 4, timeout=15)
    page = server.metric_until(
        'sereno_notifications_dropped_total{reason="rejected",receiver="ops"} 4.0'
    )
    assert 'sereno_notifications_dropped_total{reason="rejected",receiver="ops"} 4.0' in page
    assert 'sereno_notifications_dropped_total{reason="expired",receiver="ops"} 0.0' in page
    assert 'sereno_notifications_sent_total{receiver="ops"} 4.0' in page
    row = '<tr data-receiver="ops"><th scope="row">ops</th><td>webhook</td>'
    row += '<td class="number">{}</td>' * 5  # queued, sent, failed, retried, dropped
    assert row.format(0, 4, 4, 0, 4) in server.get("/?view=receivers").text
    said = server.stop().splitlines()
    refused = [line for line in said if "refused" in line]
    assert len(refused) == 4
    assert all(
        line.startswith(
            f"sereno: notify ops: dropped a notification, refused: {http_receiver.url} "
            "answered 422 Unprocessable Entity: no thanks; it was: DiskUsedPercentage is "
        )
        for line in refused
    )
    assert not any("retrying" in line for line in said)


def test_a_failure_says_whether_it_may_pass() -> None:
    assert DeliveryError("x").retryable
    assert not DeliveryError("x").receiver_wide


def test_alertmanager_keeps_hearing_of_other_firing_alerts_while_one_is_held_back(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """In Alertmanager's place, a receiver that refuses (503) whatever carries one alert: the
    others firing are re-sent all the same, or Alertmanager would let them expire."""
    http_receiver.answer_when(lambda body: any(a["labels"]["server"] == "bad" for a in body), 503)
    db = tmp_path / "sereno.db"
    create(db)
    store = StateStore(db, Event)
    firing = EngineState([episode(server="bad"), episode(server="good")])
    snapshot = Snapshot(0, Watermark(float("-inf"), T0 + 60.0), firing)
    store.checkpoint(snapshot, [], outgoing=[("am", change("bad"))])
    store.close()
    spec = ReceiverSpec(
        "am", "alertmanager", http_receiver.url, timing=PATIENT, resend_interval=0.05
    )
    delivery = deliver(notice_outbox(db), spec, [])
    try:
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 3)
    finally:
        delivery.stop()
    for body in http_receiver.accepted():
        assert [alert["labels"]["server"] for alert in body] == ["good"]
    assert delivery.depths() == {"am": 1}  # the bad one's, waiting out its backoff


def test_a_notice_queued_while_another_alert_is_retried_goes_at_once(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    http_receiver.answer_when(about("bad"), 503)
    outbox = queued(tmp_path, "ops", [change("bad")])
    delivery = deliver(
        outbox, ReceiverSpec("ops", "webhook", http_receiver.url, timing=PATIENT), []
    )
    try:
        http_receiver.wait_for(lambda r: len(requests_about("bad", r)) == 1)
        store = StateStore(tmp_path / "sereno.db", Event)
        snapshot = Snapshot(0, Watermark(float("-inf"), float("-inf")), EngineState())
        store.checkpoint(snapshot, [], outgoing=[("ops", change("good"))])
        store.close()
        delivery.wake()
        # well before the bad alert's backoff of 30 to 60 s is over
        http_receiver.wait_for(lambda r: len(r.accepted()) == 1, timeout=10)
    finally:
        delivery.stop()
    assert summaries(http_receiver) == [f"good firing at {T0}"]


@pytest.mark.parametrize(
    ("status", "retry_after", "receiver_wide"),
    [(503, None, False), (500, None, False), (429, None, True), (503, "30", True)],
)
def test_a_rate_limit_or_a_wait_asked_for_holds_the_whole_receiver(
    http_receiver: HttpReceiver, status: int, retry_after: str | None, receiver_wide: bool
) -> None:
    http_receiver.answer(status, retry_after)
    poster = JsonPoster(http_receiver.url, "the receiver", timeout=2)
    try:
        with pytest.raises(DeliveryError) as failure:
            poster.post({}, "key")
    finally:
        poster.close()
    assert (failure.value.retryable, failure.value.receiver_wide) == (True, receiver_wide)


def test_a_receiver_failing_every_alert_is_left_alone_for_its_backoff(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """One alert failing waits alone; two in a row, none taken between: the receiver is in
    trouble, and the worker waits before it tries anything more."""
    http_receiver.answer(503)
    outbox = queued(tmp_path, "ops", [change("one"), change("two"), change("three")])
    spec = ReceiverSpec("ops", "webhook", http_receiver.url, timing=PATIENT)
    pauses: list[float] = []
    paused = threading.Event()

    def pause(stopping: threading.Event, seconds: float) -> None:
        pauses.append(seconds)
        paused.set()
        stopping.wait(seconds)

    delivery = Delivery(
        outbox,
        [spec],
        {spec.name: build_sender(spec)},
        Planner(NotifyConfig("test", (spec,)), RULES),
        log=lambda line: None,
        pause=pause,
    )
    delivery.start()
    try:
        assert paused.wait(10)
        assert [request.json["commonLabels"]["server"] for request in http_receiver.requests] == [
            "one",
            "two",
        ]
        assert len(pauses) == 1 and 30 <= pauses[0] <= 60
    finally:
        delivery.stop()
