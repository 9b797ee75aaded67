"""Runs the model on the scheduler core's step plans: batch building, forward, sampling."""
