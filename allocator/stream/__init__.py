"""Routing while the data arrives: the streaming engine both modes share (no Kafka here; allocator.kafka feeds it)."""
