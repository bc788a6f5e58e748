"""Baselines: best-ask, TWAP and VWAP on snapshots and through the execution simulator."""
