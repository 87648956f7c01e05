"""`sereno serve --kafka`: the stateless ingest node, a real process against the mock cluster,
and the pure parts of its producer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Message
from peers import free_port

from sereno.events.body import BodyError
from sereno.events.schema import Event
from sereno.kafka.ingest import DELIVERY_TIMEOUT_SECONDS, encoded, split_message
from sereno.serve.answers import NOT_ON_INGEST_NODE

from conftest import Server, event, json_lines, run_sereno
from kafka_cluster import PARTITIONS, KafkaCluster

EVENTS_TOPIC = "sereno-events"
NOW = time.time()


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`, as its Java clients compute it (an unsigned 32-bit result)."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    extra = length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's DefaultPartitioner gives a keyed message."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def test_murmur2_is_kafkas() -> None:
    # the values of Kafka's own UtilsTest.testMurmur2
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, expected in cases.items():
        assert _signed(murmur2(key)) == expected, key


def test_a_large_message_is_split_between_lines_in_order() -> None:
    lines = [b"a" * 4, b"b" * 3, b"c" * 5, b"d"]
    value = b"\n".join(lines)
    assert split_message(b"S", value, 100) == [(b"S", value)]
    assert split_message(b"S", value, 9) == [(b"S", b"aaaa\nbbb"), (b"S", b"ccccc\nd")]
    assert split_message(b"S", value, 5) == [(b"S", line) for line in lines]
    with pytest.raises(BodyError, match="over the 4 a Kafka message may hold") as refused:
        split_message(b"S", value, 4)
    assert refused.value.status == 413


def test_events_are_encoded_one_message_a_service_with_their_count() -> None:
    events = [
        Event("a", "S", "Load5mAvg", 1, 1476057600, True),
        Event("b", "T", "Load5mAvg", 2.5, 1476057600, True),
        Event("c", "S", "Load5mAvg", 3, 1476057601, False),
    ]
    [(s_key, s_value, s_count), (t_key, t_value, t_count)] = encoded(events)
    assert (s_key, s_count, t_key, t_count) == (b"S", 2, b"T", 1)
    assert [json.loads(line)["server"] for line in s_value.split(b"\n")] == ["a", "c"]
    assert json.loads(t_value) == {
        "server": "b",
        "service": "T",
        "component": "Load5mAvg",
        "value": 2.5,
        "timestamp": 1476057600,
        "active": True,
    }


def _load(server: str, service: str, value: float, timestamp: float = NOW) -> dict[str, Any]:
    return event(server, service, "Load5mAvg", value, timestamp)


def _on_topic(cluster: KafkaCluster) -> list[Message]:
    return cluster.messages(EVENTS_TOPIC)


def _lines(message: Message) -> list[dict[str, Any]]:
    value = message.value()
    assert value is not None
    return [json.loads(line) for line in value.split(b"\n")]


def test_pushed_events_are_on_the_topic_a_message_a_service_where_java_puts_them(
    cluster: KafkaCluster, start_ingest: Callable[..., Server]
) -> None:
    node = start_ingest(cluster.bootstrap)
    services = [f"Service{number}" for number in range(12)]
    requests = []
    for number in range(5):
        body = [
            _load(f"s{number}_{index}", service, number * 100 + index)
            for index, service in enumerate(services[number : number + 4] * 2)
        ]
        body.append({**_load("extra", services[number], -1.0), "note": "not read by a rule"})
        answer = node.post(json.dumps(body).encode())
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": 9, "rejected": 0, "errors": []}
        requests.append(body)
    messages = _on_topic(cluster)
    # one message a service a request, each service's events in the order they were sent,
    # without the fields no rule reads
    expected = [
        [(service, [_without_note(r) for r in body if r["service"] == service])]
        for body in requests
        for service in dict.fromkeys(r["service"] for r in body)
    ]
    got = [[(_key(message), _lines(message))] for message in messages]
    assert sorted(got, key=json.dumps) == sorted(expected, key=json.dumps)
    for message in messages:
        assert message.partition() == java_partition(_key(message).encode(), PARTITIONS)
    assert len({message.partition() for message in messages}) > 1
    assert "sereno_kafka_events_produced_total 45.0" in node.metric_until(
        "sereno_kafka_events_produced_total 45.0"
    )
    assert "sereno_events_accepted_total 45.0" in node.get("/metrics").text


def _without_note(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name != "note"}


def _key(message: Message) -> str:
    key = message.key()
    assert key is not None
    return key.decode()


def test_bad_records_get_the_answers_sereno_serve_gives_and_are_not_produced(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    start_server: Callable[..., Server],
) -> None:
    node = start_ingest(cluster.bootstrap, "--max-body", "100000")
    local = start_server("--max-body", "100000")
    good = _load("a", "Good", 1.0)
    body = json_lines(
        good,
        "not json",
        {**good, "value": "high"},
        {k: v for k, v in good.items() if k != "server"},
        {**good, "timestamp": -5},
        {**good, "server": ""},
        {**good, "value": 2.0},
    )
    answer = node.post(body, "application/x-ndjson")
    assert answer.status_code == 202
    assert answer.json() == local.post(body, "application/x-ndjson").json()
    assert answer.json()["accepted"] == 2 and answer.json()["rejected"] == 5
    ahead = node.post(json.dumps({**good, "timestamp": NOW + 86_400}).encode())
    assert ahead.status_code == 202
    [error] = ahead.json()["errors"]
    assert "ahead of the clock" in error["reason"]
    # a 2016 event is not late here: lateness is the workers' to judge
    old = node.post(json.dumps(_load("old", "Good", 3.0, 1476057600)).encode())
    assert old.json() == {"accepted": 1, "rejected": 0, "errors": []}
    for refused, status in (
        (b"[1, 2", 400),
        (b"x" * 100_001, 413),
    ):
        problem = node.post(refused)
        assert problem.status_code == status
        assert problem.json()["error"] == local.post(refused).json()["error"]
    assert node.post(b"{}", "text/plain").status_code == 415
    values = [record["value"] for message in _on_topic(cluster) for record in _lines(message)]
    assert sorted(values) == [1.0, 2.0, 3.0]


def test_a_broker_down_is_a_503_in_seconds_and_nothing_answered_202_is_lost(
    cluster: KafkaCluster, start_ingest: Callable[..., Server]
) -> None:
    node = start_ingest(cluster.bootstrap)
    taken: list[float] = []
    sent = 0

    def post() -> httpx.Response:
        nonlocal sent
        values = [sent + 0.25, sent + 0.5]
        sent += 1
        body = [_load("a", "S1", values[0]), _load("b", "S2", values[1])]
        answer = httpx.post(f"{node.url}/events", json=body, timeout=30)
        if answer.status_code == 202:
            taken.extend(values)
        return answer

    assert post().status_code == 202
    cluster.set_brokers(False)
    started = time.monotonic()
    refused = post()
    assert time.monotonic() - started < DELIVERY_TIMEOUT_SECONDS + 5
    assert refused.status_code == 503
    assert refused.json()["error"].startswith("Kafka did not take the events: ")
    assert refused.headers["retry-after"] == "5"
    assert 'sereno_events_rejected_total{reason="kafka_unavailable"} 2.0' in node.metric_until(
        'reason="kafka_unavailable"'
    )
    assert 'sereno_kafka_produce_failures_total{stage="delivery"}' in node.get("/metrics").text
    assert node.get("/healthz").status_code == 200  # the process works
    cluster.set_brokers(True)
    deadline = time.monotonic() + 60
    while post().status_code != 202:
        assert time.monotonic() < deadline, "posts are still refused once the brokers are up"
    for _ in range(5):
        assert post().status_code == 202
    on_topic = [record["value"] for message in _on_topic(cluster) for record in _lines(message)]
    assert set(taken) <= set(on_topic)
    assert node.stop().rstrip().endswith("sereno: stopped")


def _one_line_refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    return line


def test_kafka_that_cannot_be_used_is_one_line_and_exit_2(
    cluster: KafkaCluster, write_file: Callable[[str, str], Path]
) -> None:
    def serve(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return run_sereno("serve", "--listen", f"127.0.0.1:{free_port()}", *args)

    missing = serve("--kafka", cluster.bootstrap, "--events-topic", "elsewhere")
    assert _one_line_refusal(missing) == (
        f"sereno: no topic 'elsewhere' at {cluster.bootstrap} (--create-topics makes it)"
    )
    line = _one_line_refusal(serve("--kafka", "kafka-without-port"))
    assert line.startswith("sereno: --kafka 'kafka-without-port': expected HOST:PORT")
    bad_line = write_file("kafka.conf", "sasl.password=hunter2\nsecurity.protocol\n")
    line = _one_line_refusal(serve("--kafka", cluster.bootstrap, "--kafka-config", bad_line))
    assert line == "sereno: kafka.conf:2: expected key=value, such as security.protocol=SASL_SSL"
    unknown = write_file("unknown.conf", "sasl.password=hunter2\nno.such.setting=1\n")
    result = serve("--kafka", cluster.bootstrap, "--kafka-config", unknown)
    line = _one_line_refusal(result)
    assert line.startswith("sereno: the Kafka client settings are refused: ")
    assert "no.such.setting" in line and "hunter2" not in result.stderr + result.stdout
    line = _one_line_refusal(serve("--kafka", cluster.bootstrap, "--db", "elsewhere.db"))
    assert line.startswith("sereno: --db has no use with --kafka")


def test_an_unreachable_cluster_is_one_line_and_exit_2() -> None:
    port = free_port()  # nothing listens there
    result = run_sereno(
        "serve", "--listen", f"127.0.0.1:{free_port()}", "--kafka", f"127.0.0.1:{port}"
    )
    assert _one_line_refusal(result).startswith("sereno: cannot reach Kafka: ")


def test_the_start_line_names_the_settings_without_secrets_and_a_stop_is_clean(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    write_file: Callable[[str, str], Path],
) -> None:
    config = write_file("kafka.conf", "client.id=ingest-test\nssl.key.password=hunter2\n")
    node = start_ingest(cluster.bootstrap, "--kafka-config", str(config))
    node.post_lines(_load("a", "S", 1.0))
    said = node.stop()
    assert "hunter2" not in said
    start, stopped = said.splitlines()
    assert start == (
        f"sereno: ingest node on {node.url}: events to topic sereno-events (6 partitions) of "
        f"Kafka at {cluster.bootstrap} (client.id=ingest-test, ssl.key.password=<secret>)"
    )
    assert stopped == "sereno: stopped"


def test_an_ingest_node_says_it_keeps_no_alerts_and_describes_only_its_routes(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    write_file: Callable[[str, str], Path],
) -> None:
    tokens = write_file("tokens", "s3cret\n")
    node = start_ingest(cluster.bootstrap, "--token-file", str(tokens))
    auth = {"authorization": "Bearer s3cret"}
    for method, path in (
        ("GET", "/alerts"),
        ("GET", "/alerts/history"),
        ("GET", "/dead-letters"),
        ("GET", "/api/status"),
        ("GET", "/api/fleet"),
        ("GET", "/api/alerts/0123456789"),
        ("POST", "/api/silences"),
        ("DELETE", "/api/alerts/0123456789/ack"),
        ("POST", "/-/reload"),
        ("GET", "/"),
    ):
        answer = httpx.request(method, f"{node.url}{path}", headers=auth)
        assert answer.status_code == 404, (method, path)
        assert answer.json() == {"error": NOT_ON_INGEST_NODE}
    assert httpx.get(f"{node.url}/alerts").status_code == 401  # tokens first, as ever
    assert node.post(json.dumps(_load("a", "S", 1.0)).encode()).status_code == 401
    assert node.post(json.dumps(_load("a", "S", 1.0)).encode(), **auth).status_code == 202
    assert node.get("/healthz").json() == {"status": "ok"}
    assert node.get("/readyz").json() == {"status": "ready"}
    document = node.get("/openapi.json", **auth).json()
    assert sorted(document["paths"]) == ["/events", "/healthz", "/metrics", "/readyz"]
    refused = document["paths"]["/events"]["post"]["responses"]["503"]
    assert "Retry-After" in refused["headers"]


def test_an_ingest_node_keeps_to_its_openapi_document(
    cluster: KafkaCluster, start_ingest: Callable[..., Server], tmp_path: Path
) -> None:
    node = start_ingest(cluster.bootstrap)
    (tmp_path / "schemathesis.toml").write_text('warnings = ["missing_test_data"]\n')
    st = Path(sys.executable).parent / "st"
    command = [str(st), "run", f"{node.url}/openapi.json", "--checks", "all", "--seed"]
    command += ["20161010", "--max-examples", "50", "--workers", "1", "--no-color"]
    result = subprocess.run(
        [*command, "--request-timeout", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No issues found" in result.stdout, result.stdout
    assert "Traceback" not in node.stop()


def test_the_fields_the_rules_read_are_kept_and_a_hangup_reads_the_rules_again(
    cluster: KafkaCluster,
    start_ingest: Callable[..., Server],
    write_file: Callable[[str, str], Path],
) -> None:
    rules = write_file(
        "rules.yaml",
        'severities: {LOW: {}}\nrules:\n  - {name: eu, severity: LOW, condition: region == "eu"}\n',
    )
    node = start_ingest(cluster.bootstrap, "-r", str(rules))
    node.post_lines({**_load("a", "S", 1.0), "region": "eu", "rack": "r1"})
    write_file(
        "rules.yaml",
        'severities: {LOW: {}}\nrules:\n  - {name: r1, severity: LOW, condition: rack == "r1"}\n',
    )
    node.process.send_signal(signal.SIGHUP)
    reloaded = "sereno_rules_reloads_total 1.0"
    assert reloaded in node.metric_until(reloaded)
    node.post_lines({**_load("a", "S", 2.0), "region": "eu", "rack": "r1"})
    [first, second] = [record for m in _on_topic(cluster) for record in _lines(m)]
    assert (first["region"], "rack" in first) == ("eu", False)
    assert ("region" in second, second["rack"]) == (False, "r1")
    assert "sereno: rules reloaded from" in node.stop()


def test_a_stop_answers_the_requests_in_flight_and_exits_0(
    cluster: KafkaCluster, start_ingest: Callable[..., Server]
) -> None:
    node = start_ingest(cluster.bootstrap)
    cluster.set_brokers(False)
    answers: list[httpx.Response] = []
    body = json.dumps([_load("a", "S1", 1.0), _load("b", "S2", 2.0)]).encode()
    url = f"{node.url}/events"
    posting = threading.Thread(
        target=lambda: answers.append(httpx.post(url, content=body, timeout=30))
    )
    posting.start()
    assert "sereno_kafka_messages_in_flight 2.0" in node.metric_until(
        "sereno_kafka_messages_in_flight 2.0"
    )
    said = node.stop()  # SIGTERM, then exit status 0
    posting.join()
    [answer] = answers
    assert answer.status_code == 503, answer.text
    assert said.rstrip().endswith("sereno: stopped") and "Traceback" not in said
