"""Execution: fill records, the faithful backtest, the venue book, the simulator and the realistic router run."""
