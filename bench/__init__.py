"""Benchmarks: `python -m bench [NAME ...]` runs them and rewrites BENCHMARKS.md."""
