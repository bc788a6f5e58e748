"""Study: many parent orders over many market paths, parameters chosen out of sample, paired differences
with confidence intervals that respect the paths' correlation (issue 11, in progress)."""
