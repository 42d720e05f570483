"""Gateway-overhead benchmark (issue 7): see bench/run.py and docs/benchmarks.md."""
