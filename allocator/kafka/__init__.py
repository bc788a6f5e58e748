"""Kafka edge: wire codec and client settings, producer, consumer, live decisions."""
