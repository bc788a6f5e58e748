"""Data: the MBP schema, the replay window, the loader (CSV and DBN), the fee table, the dry-run summary."""
