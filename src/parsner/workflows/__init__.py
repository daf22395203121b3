"""Workflows chain the stages: build → train → evaluate (named benchmarks, a Label Studio retraining round)."""
