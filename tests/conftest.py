"""Shared fixtures: the embedded default model (converted once, cached)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def default_model():
    from pythia.models.default_model import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def server(default_model, tmp_path_factory):
    """The embedded SmolLM2 served on a free loopback port; checked for leaked pages at the end."""
    from pythia.testing.live_server import LiveServer

    live = LiveServer("--max-total-tokens", "16384", "--chunked-prefill-size", "256",
                      log_path=tmp_path_factory.mktemp("server") / "server.log")
    yield live
    live.close()
