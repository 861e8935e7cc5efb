"""Benchmarks: scripts run from the repository root as `python benchmarks/<name>.py`; each puts
the root on sys.path and imports its siblings as `benchmarks.<module>` (as the tests do)."""
