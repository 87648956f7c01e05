"""Scale-out on Kafka: ingest nodes produce events to a topic keyed by service, workers in one
consumer group evaluate their partitions and write alert changes to an alerts topic, and a
delivery stage in a consumer group of its own notifies people (see README, "Scaling out")."""
