"""Report: the JSON report, the decision log and the plot."""
