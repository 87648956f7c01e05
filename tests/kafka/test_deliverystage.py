"""The delivery stage of `sereno worker`: the alerts topic's notices reach a real webhook on
127.0.0.1 through the mock cluster, once each, in order per alert, with offsets committed only
once delivered; and a worker killed with -9 loses nothing and has nothing delivered twice."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from confluent_kafka import Producer
from peers import HttpReceiver

from sereno.kafka.deliverystage import DeliveryStage, InFlight, TrackedSender, sent_key
from sereno.kafka.messages import ALERT_MESSAGE, addressed, change_message
from sereno.kafka.settings import DEFAULT_ALERTS_TOPIC, KafkaSettings
from sereno.notify.config import NotifyConfig, ReceiverSpec, Timing
from sereno.notify.notice import Notice
from sereno.notify.planner import Planner
from sereno.rules.rulefmt import load_default_rules
from sereno.state.store import create

from .workers import wait_for
from disk_alerts import T0, change
from kafka_cluster import KafkaCluster

RULES = load_default_rules()
GROUP = "tests"
RUNNER = Path(__file__).with_name("delivery_runner.py")
# a dead member's partitions go to another one within seconds, not the default 45
CLIENT = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "max.poll.interval.ms": "10000",
}
FAST = Timing(timeout=0.5, retry_backoff=0.02, retry_backoff_max=0.1)
Record = tuple[bytes, bytes]  # key, value
WAIT = 30.0  # seconds a test waits for what it expects
Placed = tuple[int, int]  # partition, offset


def record(server: str, resolved: bool = False, receiver: str = "hook") -> Record:
    """The alerts topic's record of a disk alert of `server` firing (at minute 0) or resolved
    (at minute 5), with its notice for `receiver`."""
    episode = change(server, 5 if resolved else 0, resolved)
    planner = Planner(NotifyConfig("test"), RULES)
    notice = planner.notice(episode, "resolved" if resolved else "fired", episode.changed_at or 0)
    return change_message(episode, [addressed(receiver, notice)])


def produce(cluster: KafkaCluster, records: list[Record]) -> list[Placed]:
    """Write `records` to the alerts topic as an evaluation worker would: where each landed."""
    producer = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    placed: list[Placed] = []

    def landed(error: object, message: object) -> None:
        assert error is None, error
        placed.append((message.partition(), message.offset()))  # type: ignore[attr-defined]

    for key, value in records:
        producer.produce(DEFAULT_ALERTS_TOPIC, value, key, on_delivery=landed)
        producer.flush(10)  # one at a time: `placed` is in the order of `records`
    assert len(placed) == len(records)
    return placed


def committed(cluster: KafkaCluster) -> dict[int, int]:
    """The offsets the delivery group has committed, by partition (those it has)."""
    return cluster.committed(f"{GROUP}-delivery", DEFAULT_ALERTS_TOPIC)


def covers(placed: list[Placed]) -> Callable[[KafkaCluster], bool]:
    """Whether the committed offsets are past every record `placed`."""

    def check(cluster: KafkaCluster) -> bool:
        offsets = committed(cluster)
        return all(offsets.get(number, -1) > offset for number, offset in placed)

    return check


def told(receiver: HttpReceiver) -> list[tuple[str, str]]:
    """(server, change) of each notice the receiver took, in the order it took them."""
    return [
        (body["commonLabels"]["server"], body["alerts"][0]["annotations"]["change"])
        for body in receiver.accepted()
    ]


def ends(cluster: KafkaCluster) -> dict[int, int]:
    """The offset after the last record of each partition of the alerts topic that has one."""
    return {
        (message.partition() or 0): (message.offset() or 0) + 1
        for message in cluster.messages(DEFAULT_ALERTS_TOPIC)
    }


def keys_taken(receiver: HttpReceiver) -> list[str]:
    """The idempotency keys of the notices the receiver took."""
    return [
        request.headers["idempotency-key"]
        for request in receiver.requests
        if 200 <= request.status < 300
    ]


def in_process_stage(
    cluster: KafkaCluster, db: Path, url: str, log: Callable[[str], None]
) -> DeliveryStage:
    create(db)
    config = NotifyConfig("test", (ReceiverSpec("hook", "webhook", url, timing=FAST),))
    return DeliveryStage(KafkaSettings(cluster.bootstrap, CLIENT), GROUP, db, config, RULES, log)


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def stage(
    cluster: KafkaCluster, http_receiver: HttpReceiver, tmp_path: Path, logged: list[str]
) -> Iterator[DeliveryStage]:
    running = in_process_stage(cluster, tmp_path / "worker.db", http_receiver.url, logged.append)
    running.start()
    yield running
    print("the stage said:", *logged, sep="\n  ")  # shown if the test failed
    print(running.counts)
    running.stop()
    assert running.failure is None
    assert not running.running


def test_notices_reach_the_webhook_once_each_in_order_per_alert_then_offsets_are_committed(
    cluster: KafkaCluster, http_receiver: HttpReceiver, stage: DeliveryStage
) -> None:
    servers = [f"web{n}" for n in range(1, 7)]
    records = [record(server) for server in servers] + [
        record(server, resolved=True) for server in servers
    ]
    placed = produce(cluster, records)
    http_receiver.wait_for(lambda r: len(r.accepted()) == 12, timeout=30)
    for server in servers:
        assert [change for s, change in told(http_receiver) if s == server] == [
            "fired",
            "resolved",
        ]
    assert len(set(keys_taken(http_receiver))) == 12
    wait_for(lambda: covers(placed)(cluster), "offsets committed past every record", WAIT)
    # committed up to the end of each partition written, no further: the records of the keys
    # the stage said it delivered, which it wrote after them, included
    written = {number for number, _ in placed}
    wait_for(
        lambda: {n: o for n, o in committed(cluster).items() if n in written} == ends(cluster),
        "offsets committed to the end of each partition written",
        WAIT,
    )
    said = [
        key
        for message in cluster.messages(DEFAULT_ALERTS_TOPIC)
        for key in ALERT_MESSAGE.decode(message.value() or b"").delivered
    ]
    assert sorted(said) == sorted(f"hook/{key}" for key in keys_taken(http_receiver))
    assert (stage.counts.queued, stage.counts.duplicates, stage.counts.undecodable) == (12, 0, 0)


def test_the_same_record_twice_is_delivered_once(
    cluster: KafkaCluster, http_receiver: HttpReceiver, stage: DeliveryStage
) -> None:
    twice = record("web1")
    # then the alert's next change: once it is told, both copies were read and dealt with
    produce(cluster, [twice, twice, record("web1", resolved=True)])
    http_receiver.wait_for(lambda r: ("web1", "resolved") in told(r), timeout=30)
    assert told(http_receiver) == [("web1", "fired"), ("web1", "resolved")]
    assert stage.counts.duplicates == 1


def test_nothing_is_committed_past_a_notice_its_receiver_has_not_taken(
    cluster: KafkaCluster, http_receiver: HttpReceiver, stage: DeliveryStage
) -> None:
    first = produce(cluster, [record("web1")])
    http_receiver.wait_for(lambda r: told(r) == [("web1", "fired")], timeout=30)
    wait_for(lambda: covers(first)(cluster), "the first record committed", WAIT)
    http_receiver.answer(503)
    (number, offset), *_ = second = produce(cluster, [record("web1", resolved=True)])
    # retried: the stage has read it and failed more than once
    http_receiver.wait_for(
        lambda r: sum(request.status == 503 for request in r.requests) >= 3, timeout=30
    )
    assert committed(cluster)[number] == offset  # up to the record still waiting, not past
    http_receiver.answer(200)
    http_receiver.wait_for(lambda r: told(r) == [("web1", "fired"), ("web1", "resolved")])
    wait_for(lambda: covers(second)(cluster), "the second record committed once taken", WAIT)


def test_a_record_that_is_not_an_alert_message_is_logged_and_passed_over(
    cluster: KafkaCluster, http_receiver: HttpReceiver, stage: DeliveryStage, logged: list[str]
) -> None:
    good = record("web1")
    bad = produce(cluster, [(good[0], b"<html>")] + [(good[0], b"")] * 11)
    placed = produce(cluster, [good])
    assert {number for number, _ in bad} == {placed[0][0]}  # the same key: the same partition
    http_receiver.wait_for(lambda r: told(r) == [("web1", "fired")], timeout=30)
    number, first = bad[0]
    assert [line for line in logged if "passed over" in line] == [
        f"sereno: delivery: passed over record {DEFAULT_ALERTS_TOPIC} [{number}] at offset "
        f"{first}: not an alert message (JSON is malformed: invalid character (byte 0))"
    ] + [
        f"sereno: delivery: passed over record {DEFAULT_ALERTS_TOPIC} [{number}] at offset "
        f"{offset}: not an alert message (Input data was truncated)"
        for _, offset in bad[1:9]
    ] + [
        f"sereno: delivery: passed over record {DEFAULT_ALERTS_TOPIC} [{number}] at offset "
        f"{bad[9][1]}: not an alert message (Input data was truncated); further ones are "
        "counted, not logged"
    ]
    assert stage.counts.undecodable == 12
    wait_for(lambda: covers(placed)(cluster), "offsets committed past them all", WAIT)


def test_a_notice_for_a_receiver_the_config_does_not_have_is_counted_and_said_once(
    cluster: KafkaCluster, http_receiver: HttpReceiver, stage: DeliveryStage, logged: list[str]
) -> None:
    produce(cluster, [record("web1", receiver="pager"), record("web2", receiver="pager")])
    produce(cluster, [record("web1"), record("web2")])  # after them, in their partitions
    http_receiver.wait_for(lambda r: sorted(told(r)) == [("web1", "fired"), ("web2", "fired")])
    assert stage.counts.unknown_receiver == 2
    assert [line for line in logged if "pager" in line] == [
        "sereno: delivery: notices for receiver 'pager', which the config does not have, are "
        "not delivered (counted)"
    ]


def test_a_worker_killed_loses_nothing_and_its_successor_delivers_nothing_twice(
    cluster: KafkaCluster, http_receiver: HttpReceiver, tmp_path: Path, logged: list[str]
) -> None:
    servers = [f"web{n}" for n in range(1, 7)]
    first = produce(cluster, [record(server) for server in servers])
    worker_a = subprocess.Popen(
        [sys.executable, RUNNER, cluster.bootstrap, GROUP, tmp_path / "a.db", http_receiver.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker_a.stdout is not None and worker_a.stdout.readline() == "started\n"
        http_receiver.wait_for(lambda r: len(r.accepted()) == 6, timeout=30)
        # A is killed only once its commits say what it delivered
        wait_for(lambda: covers(first)(cluster), "A's offsets committed", WAIT)
    finally:
        worker_a.kill()
        worker_a.wait()
    # after A's death: a copy of one of the records A delivered (as an evaluation worker
    # taking over an events partition writes it again), then the alerts' next changes
    again = produce(cluster, [record("web3")])
    second = produce(cluster, [record(server, resolved=True) for server in servers])
    worker_b = in_process_stage(cluster, tmp_path / "b.db", http_receiver.url, logged.append)
    worker_b.start()
    try:
        http_receiver.wait_for(lambda r: len(r.accepted()) >= 12, timeout=60)
        wait_for(lambda: covers(again + second)(cluster), "B's offsets committed", WAIT)
        assert worker_b.counts.looked_back >= 6
        assert worker_b.counts.duplicates == 1
    finally:
        worker_b.stop()
    assert worker_b.failure is None
    keys = keys_taken(http_receiver)
    assert len(keys) == len(set(keys)) == 12
    for server in servers:
        assert [change for s, change in told(http_receiver) if s == server] == [
            "fired",
            "resolved",
        ]


def test_a_partition_taken_away_has_its_undelivered_notices_withdrawn_for_its_new_owner(
    cluster: KafkaCluster, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    http_receiver.answer(503)
    servers = [f"web{n}" for n in range(1, 7)]
    first = produce(cluster, [record(server) for server in servers])
    assert len({number for number, _ in first}) > 1  # so that a second worker gets some
    worker_a = in_process_stage(cluster, tmp_path / "a.db", http_receiver.url, lambda _: None)
    worker_b = in_process_stage(cluster, tmp_path / "b.db", http_receiver.url, lambda _: None)
    worker_a.start()
    try:
        # all queued, and refused for now
        wait_for(lambda: worker_a.counts.queued == 6, "A queueing every notice", WAIT)
        http_receiver.wait_for(lambda r: len(r.requests) > 0, timeout=30)
        worker_b.start()
        try:
            wait_for(lambda: worker_a.counts.withdrawn > 0, "A withdrawing notices", WAIT)
            wait_for(lambda: worker_b.counts.queued > 0, "B queueing them again", WAIT)
            http_receiver.answer(200)
            http_receiver.wait_for(lambda r: len(r.accepted()) == 6, timeout=30)
            # then the alerts' next changes: once those are told, nothing else is on its way
            second = produce(cluster, [record(server, resolved=True) for server in servers])
            http_receiver.wait_for(lambda r: len(r.accepted()) >= 12, timeout=30)
            wait_for(lambda: covers(first + second)(cluster), "offsets committed", WAIT)
        finally:
            worker_b.stop()
    finally:
        worker_a.stop()
    assert (worker_a.failure, worker_b.failure) == (None, None)
    keys = keys_taken(http_receiver)
    assert len(keys) == len(set(keys)) == 12
    assert worker_a.counts.queued + worker_b.counts.queued == 12 + worker_a.counts.withdrawn


class SlowSender:
    """A receiver's sender that takes `seconds` to send, and remembers what it sent."""

    batch_size = 10

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sending = threading.Event()
        self.release = threading.Event()

    def send(self, notices: Sequence[Notice]) -> None:
        self.sending.set()
        self.release.wait(10)
        self.sent += [notice.server for notice in notices]

    def close(self) -> None:
        pass


def test_a_withdrawal_waits_for_the_send_in_flight_and_no_send_of_it_starts_after() -> None:
    planner = Planner(NotifyConfig("test"), RULES)
    web1, web2 = (planner.notice(change(s, 0), "fired", T0) for s in ("web1", "web2"))
    in_flight, slow, taken = InFlight(), SlowSender(), list[str]()
    sender = TrackedSender("hook", slow, in_flight, taken.extend)
    sending = threading.Thread(target=sender.send, args=([web1],))
    sending.start()
    assert slow.sending.wait(10)
    threading.Timer(0.2, slow.release.set).start()
    # waits for web1's send to end; web2 is not sent from now on
    assert in_flight.withdraw([sent_key("hook", web1), sent_key("hook", web2)], timeout=10)
    assert slow.sent == ["web1"]
    sending.join()
    sender.send([web1, web2])  # as a worker that read them before the withdrawal would
    assert slow.sent == ["web1"]
    in_flight.allow([sent_key("hook", web2)])  # queued again
    sender.send([web1, web2])
    assert slow.sent == ["web1", "web2"]
    assert taken == [sent_key("hook", web1), sent_key("hook", web2)]  # told as taken


def test_a_withdrawal_gives_up_waiting_for_a_send_that_takes_too_long() -> None:
    planner = Planner(NotifyConfig("test"), RULES)
    web1 = planner.notice(change("web1", 0), "fired", T0)
    in_flight, slow = InFlight(), SlowSender()
    sending = threading.Thread(
        target=TrackedSender("hook", slow, in_flight, lambda keys: None).send, args=([web1],)
    )
    sending.start()
    assert slow.sending.wait(10)
    assert not in_flight.withdraw([sent_key("hook", web1)], timeout=0.1)
    slow.release.set()
    sending.join()


def test_alertmanager_is_refreshed_with_the_alerts_whose_latest_notice_is_firing(
    cluster: KafkaCluster, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    db = tmp_path / "worker.db"
    create(db)
    base = f"http://127.0.0.1:{http_receiver.port}"
    spec = ReceiverSpec("am", "alertmanager", base, timing=FAST, resend_interval=0.2)
    settings = KafkaSettings(cluster.bootstrap, CLIENT)
    stage = DeliveryStage(settings, GROUP, db, NotifyConfig("test", (spec,)), RULES, lambda _: None)
    stage.start()
    try:
        produce(cluster, [record("web1", receiver="am")])
        # told, then refreshed with it twice more
        http_receiver.wait_for(lambda r: len(firing_in(r, "web1")) >= 3, timeout=30)
        produce(cluster, [record("web1", resolved=True, receiver="am")])
        http_receiver.wait_for(lambda r: ended_at(r, "web1") is not None, timeout=30)
        produce(cluster, [record("web2", receiver="am")])
        # refreshed twice after web1 resolved: with web2 alone
        http_receiver.wait_for(
            lambda r: len([i for i in firing_in(r, "web2") if i > (ended_at(r, "web1") or 0)]) >= 3,
            timeout=30,
        )
    finally:
        stage.stop()
    resolved = ended_at(http_receiver, "web1")
    assert resolved is not None
    assert [i for i in firing_in(http_receiver, "web1") if i > resolved] == []


def firing_in(receiver: HttpReceiver, server: str) -> list[int]:
    """The indexes of the requests to Alertmanager that say `server`'s alert fires."""
    return [
        index
        for index, request in enumerate(receiver.requests)
        if any(
            alert["labels"].get("server") == server and "endsAt" not in alert
            for alert in request.json
        )
    ]


def ended_at(receiver: HttpReceiver, server: str) -> int | None:
    """The index of the first request to Alertmanager that says `server`'s alert ended."""
    return next(
        (
            index
            for index, request in enumerate(receiver.requests)
            if any(
                alert["labels"].get("server") == server and "endsAt" in alert
                for alert in request.json
            )
        ),
        None,
    )


def test_a_new_config_delivers_to_its_receivers_from_then_on(
    cluster: KafkaCluster, http_receiver: HttpReceiver, stage: DeliveryStage, logged: list[str]
) -> None:
    produce(cluster, [record("web1", receiver="pager")])
    wait_for(lambda: stage.counts.unknown_receiver == 1, "the notice for pager read", WAIT)
    both = (
        ReceiverSpec("hook", "webhook", http_receiver.url, timing=FAST),
        ReceiverSpec("pager", "webhook", http_receiver.url, timing=FAST),
    )
    stage.use(NotifyConfig("test", both), RULES)
    produce(cluster, [record("web1", resolved=True, receiver="pager")])
    http_receiver.wait_for(lambda r: told(r) == [("web1", "resolved")], timeout=30)
    assert [body["receiver"] for body in http_receiver.accepted()] == ["pager"]
