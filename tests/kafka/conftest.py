from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafka_cluster import KafkaCluster, kafka_cluster


@pytest.fixture
def cluster() -> Iterator[KafkaCluster]:
    """A mock Kafka cluster of the test's own, with Sereno's topics."""
    with kafka_cluster() as started:
        yield started
