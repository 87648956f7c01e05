from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from peers import free_port

from conftest import Server, sereno_executable
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if server.get("/readyz").status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail("the ingest node did not start")

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait()
