"""Evaluation: seqeval scores, error analysis, plots, the eval harness over a dataset split, and benchmarks."""
