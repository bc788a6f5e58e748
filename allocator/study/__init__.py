"""Study: many parent orders over many market paths, the router's parameters chosen out of sample, and
router − baseline differences with confidence intervals that respect the paths' correlation.

From Python: `allocator.study.run.run_study(sources, OrderPlan(...), RunConfig(mode="cont-kukanov"), fees)`
with sources from `allocator.study.paths.synthetic_sources` / `file_sources` and an engine from
`allocator.study.engine` (InProcessEngine by default, DaskEngine for a LocalCluster or a cluster address).
From the shell: `python -m allocator.study` (allocator/cli/study.py).
"""
