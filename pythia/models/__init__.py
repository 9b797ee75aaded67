"""Model assets used by Pythia (e.g. the bundled default model checkpoint)."""
