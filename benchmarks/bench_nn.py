"""Benchmarks of dyntorch.nn conv/CNN paths vs torch (stub)."""
