"""Benchmarks (`make bench`): every figure beside a raw limit measured in the same run."""
