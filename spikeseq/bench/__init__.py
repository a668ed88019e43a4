"""Benchmarks run by ``spikeseq bench NAME``: each ``spikeseq.bench.NAME`` module provides ``register``/``run``."""
