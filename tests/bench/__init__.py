"""Benchmarks: run on demand (``python -m tests.bench.frontend``) and in CI on a short budget."""
