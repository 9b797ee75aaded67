"""Shared fixtures: the embedded default model (converted once, cached)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def default_model():
    from pythia.models.default_model import default_model_path

    return default_model_path()
