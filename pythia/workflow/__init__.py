"""Workflow semantics: registered topologies and the online profiler that learns from requests."""
