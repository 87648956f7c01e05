from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peers import free_port

from conftest import Server, ready_or_fail, sereno_executable, stop_servers
from kafka_cluster import KafkaCluster, kafka_cluster


@pytest.fixture
def cluster() -> Iterator[KafkaCluster]:
    """A mock Kafka cluster of the test's own, with Sereno's topics."""
    with kafka_cluster() as started:
        yield started


@pytest.fixture
def start_ingest(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`sereno serve --kafka BOOTSTRAP ARGS...` on a free port, once it is ready."""
    started: list[Server] = []

    def start(bootstrap: str, *args: str) -> Server:
        port = free_port()
        command = [sereno_executable(), "serve", "--listen", f"127.0.0.1:{port}"]
        process = subprocess.Popen(
            [*command, "--kafka", bootstrap, *args], stderr=subprocess.PIPE, cwd=tmp_path
        )
        server = Server(process, f"http://127.0.0.1:{port}", tmp_path / "no-alerts.log")
        started.append(server)
        return ready_or_fail(server, 30, "the ingest node")

    yield start
    stop_servers(started)
