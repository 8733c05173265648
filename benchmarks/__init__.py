"""Benchmarks: quality (the paper's tables) and speed; each writes JSON and a BENCHMARKS.md section."""
