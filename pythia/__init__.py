"""Pythia: an agent-native LLM serving system (see ARCHITECTURE.md in the project's shared notes)."""

from __future__ import annotations

__version__ = "0.1.0"
