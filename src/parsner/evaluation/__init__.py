"""Evaluation: seqeval scores, error analysis, plots, the eval harness over a dataset split, and the benchmarks'
published numbers and tables (running a benchmark is :mod:`parsner.workflows.benchmark`'s)."""
