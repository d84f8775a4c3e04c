"""Benchmarks: scripts, not tests. Each prints its numbers and writes ``bench/results/<name>.json``."""
