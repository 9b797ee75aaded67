"""Replay harness: start a server per configuration, replay a workload over HTTP, report."""
