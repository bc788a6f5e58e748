"""Benchmarks: `python -m bench` runs every bench_*.py module and prints the figures of one run."""
