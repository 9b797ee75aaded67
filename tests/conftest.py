"""Shared fixtures: the embedded default model (converted once, cached)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def default_model():
    from pythia.models.default_model import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def server(default_model):
    """The embedded SmolLM2 served on a free loopback port; checked for leaked pages at the end."""
    from server_fixture import LiveServer

    live = LiveServer("--max-total-tokens", "16384", "--chunked-prefill-size", "256")
    yield live
    try:
        live.assert_no_leaks()
    finally:
        live.stop()
