"""CLI: flags and error handling shared by the scripts, and `make demo`."""
