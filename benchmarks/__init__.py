"""Benchmarks for minitransformer: scripts that measure and print ratios against peers measured
in the same run (see benchmarks/README.md). Run all of them with `python -m benchmarks.run_all`.
"""
