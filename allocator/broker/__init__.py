"""Broker edge: the embedded Kafka-protocol brokers (Tansu, noida-db)."""
