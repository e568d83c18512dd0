"""Benchmarks: each module writes JSON into bench/results/."""
