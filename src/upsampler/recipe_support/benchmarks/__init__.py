"""Sections of ``recipes/benchmark.py``: each times ours against a reference in one process."""
