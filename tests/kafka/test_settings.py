from __future__ import annotations

import pytest

from sereno.kafka.settings import (
    KafkaError,
    KafkaSettings,
    check_bootstrap,
    check_topic,
    parse_client_config,
)
from sereno.kafka.topics import prepare_topics

from kafka_cluster import KafkaCluster


def test_a_client_config_file_gives_its_settings_and_sereno_fixes_its_own() -> None:
    text = "# reach the cluster over TLS\nsecurity.protocol = SASL_SSL\n\nsasl.password=hunter2\n"
    client = parse_client_config(text, "kafka.conf")
    assert client == {"security.protocol": "SASL_SSL", "sasl.password": "hunter2"}
    settings = KafkaSettings("k1:9092", client)
    producer = settings.producer_config(**{"transactional.id": "w1"})
    assert producer["acks"] == "all" and producer["partitioner"] == "murmur2_random"
    assert producer["enable.idempotence"] == "true" and producer["transactional.id"] == "w1"
    consumer = settings.consumer_config("workers")
    assert consumer["isolation.level"] == "read_committed" and consumer["group.id"] == "workers"
    assert settings.describe() == (
        "Kafka at k1:9092 (sasl.password=<secret>, security.protocol=SASL_SSL)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("security.protocol\n", "kafka.conf:1: expected key=value, such as security.protocol"),
        ("a=1\n=2\n", "kafka.conf:2: expected key=value"),
        ("acks=1\n", "kafka.conf:1: acks is set by sereno"),
        ("a=1\na=2\n", "kafka.conf:2: a is set twice"),
    ],
)
def test_a_bad_client_config_line_is_named(text: str, message: str) -> None:
    with pytest.raises(KafkaError, match=message):
        parse_client_config(text, "kafka.conf")


def test_bootstrap_and_topic_names_are_checked() -> None:
    assert check_bootstrap("k1:9092, k2:9093") == "k1:9092,k2:9093"
    with pytest.raises(KafkaError, match="expected HOST:PORT"):
        check_bootstrap("k1")
    with pytest.raises(KafkaError, match="a topic name is 1 to 249"):
        check_topic("--events-topic", "bad/name")


def test_missing_topics_are_named_and_existing_ones_counted(cluster: KafkaCluster) -> None:
    settings = KafkaSettings(cluster.bootstrap)
    assert prepare_topics(settings, ["sereno-events", "sereno-state"]) == {
        "sereno-events": 6,
        "sereno-state": 6,
    }
    with pytest.raises(
        KafkaError, match=r"no topic .elsewhere. at .* \(--create-topics makes it\)"
    ):
        prepare_topics(settings, ["elsewhere"])


def test_a_client_setting_librdkafka_does_not_know_is_one_line(cluster: KafkaCluster) -> None:
    settings = KafkaSettings(cluster.bootstrap, {"no.such.setting": "1"})
    with pytest.raises(
        KafkaError, match=r"the Kafka client settings are refused: .*no\.such\.setting"
    ):
        prepare_topics(settings, ["sereno-events"])
