"""Pipelines: library stages wired into runs (nightly, report, retrain). Short, no logic."""
