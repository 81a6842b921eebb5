"""Benchmarks: `python -m bench.<name>`; reports go to bench/results/."""
