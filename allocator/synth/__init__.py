"""The synthetic multi-venue MBP-10 generator behind data/l1_day.csv.gz (not imported at runtime)."""
