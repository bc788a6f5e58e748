"""Snapshots: the order side and the one snapshot rule that decides what the router sees at each tick."""
