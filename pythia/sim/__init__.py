"""Trace-driven simulator: the real scheduler core and WorkflowTracker on a virtual clock, with
the model's forward pass replaced by a cost model (`cost_models/`). `python -m pythia.sim`."""
