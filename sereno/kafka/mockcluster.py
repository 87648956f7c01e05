"""A Kafka cluster in one process, for trying scale-out on one machine and for the tests:
librdkafka's mock cluster, which speaks the real protocol over TCP on 127.0.0.1 (consumer
groups, idempotent and transactional producers), with nothing on disk. Not for production:
it keeps everything in memory, keeps only about the last 5 MB of each partition (older
records are deleted, as by a small `retention.bytes`), does not compact, and shows a
transaction's records to `read_committed` consumers before it commits (and after it aborts).

    python -m sereno.kafka.mockcluster [--brokers 3] [--topic NAME:PARTITIONS ...]
                                       [--initial-rebalance-delay MS]

prints the bootstrap servers on its first line, then takes commands on standard input, a
line each, and answers each with "ok": `down` (every broker stops answering), `up` (they
answer again), `fail API_KEY ERROR COUNT` (the next COUNT requests of that type are answered
with that error code). It stops at the end of its input.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from collections.abc import Sequence
from pathlib import Path

import confluent_kafka

ERRBUF = 512
RD_KAFKA_PRODUCER = 0


def _library() -> ctypes.CDLL:
    """The librdkafka that confluent-kafka's wheel ships (its mock cluster is in it)."""
    package = Path(confluent_kafka.__file__).parent
    found = sorted(package.parent.glob("confluent_kafka.libs/librdkafka*.so*"))
    name = str(found[0]) if found else "librdkafka.so.1"
    lib = ctypes.CDLL(name)
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.restype = ctypes.c_int
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t
    ]  # fmt: skip
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int
    ]  # fmt: skip
    lib.rd_kafka_mock_push_request_errors_array.restype = None
    lib.rd_kafka_mock_push_request_errors_array.argtypes = [
        ctypes.c_void_p, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)
    ]  # fmt: skip
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.restype = None
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    for name in ("rd_kafka_mock_broker_set_down", "rd_kafka_mock_broker_set_up"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int32]
    return lib


class MockCluster:
    """A mock cluster of `brokers` brokers, alive as long as this object."""

    def __init__(self, brokers: int = 3) -> None:
        self._lib = lib = _library()
        self.brokers = brokers
        conf = lib.rd_kafka_conf_new()
        # the handle the cluster lives in only hosts it: it talks to no broker itself
        lib.rd_kafka_conf_set(conf, b"log_level", b"0", None, 0)
        error = ctypes.create_string_buffer(ERRBUF)
        self._handle = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, ERRBUF)
        if not self._handle:
            raise RuntimeError(f"librdkafka: {error.value.decode()}")
        self._cluster = lib.rd_kafka_mock_cluster_new(self._handle, brokers)
        if not self._cluster:
            raise RuntimeError("librdkafka could not start a mock cluster")
        self.bootstrap: str = lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode()

    def create_topic(self, name: str, partitions: int, replication: int = 1) -> None:
        code = self._lib.rd_kafka_mock_topic_create(
            self._cluster, name.encode(), partitions, min(replication, self.brokers)
        )
        if code:
            raise RuntimeError(f"the mock cluster could not create {name}: error {code}")

    def set_initial_rebalance_delay(self, milliseconds: int) -> None:
        """How long a new group waits for more members before its first rebalance (Kafka's
        `group.initial.rebalance.delay.ms`, 3000 by default)."""
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, milliseconds)

    def fail_requests(self, api_key: int, error: int, count: int) -> None:
        """The next `count` requests of `api_key` (a Kafka protocol request type: 0 is
        Produce, 26 EndTxn...) are answered with the error code `error`."""
        errors = (ctypes.c_int * count)(*([error] * count))
        self._lib.rd_kafka_mock_push_request_errors_array(self._cluster, api_key, count, errors)

    def set_brokers(self, up: bool) -> None:
        """Every broker answers again (`up`), or stops answering."""
        change = (
            self._lib.rd_kafka_mock_broker_set_up if up else self._lib.rd_kafka_mock_broker_set_down
        )
        for broker in range(1, self.brokers + 1):
            change(self._cluster, broker)


def _topic(text: str) -> tuple[str, int]:
    name, _, partitions = text.rpartition(":")
    if not name or not partitions.isdigit() or int(partitions) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME:PARTITIONS, got {text!r}")
    return name, int(partitions)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sereno.kafka.mockcluster")
    parser.add_argument("--brokers", type=int, default=3, choices=range(1, 10), metavar="N")
    parser.add_argument("--topic", type=_topic, action="append", default=[], metavar="NAME:N")
    parser.add_argument("--initial-rebalance-delay", type=int, default=3000, metavar="MS")
    args = parser.parse_args(argv)
    cluster = MockCluster(args.brokers)
    cluster.set_initial_rebalance_delay(args.initial_rebalance_delay)
    for name, partitions in args.topic:
        cluster.create_topic(name, partitions, args.brokers)
    print(cluster.bootstrap, flush=True)
    for line in sys.stdin:
        command = line.strip()
        words = command.split()
        if command in ("down", "up"):
            cluster.set_brokers(command == "up")
            print("ok", flush=True)
        elif len(words) == 4 and words[0] == "fail" and all(w.isdigit() for w in words[1:]):
            cluster.fail_requests(*(int(word) for word in words[1:]))
            print("ok", flush=True)
        elif command:
            print(f"unknown command {command!r}: expected down, up or fail", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
