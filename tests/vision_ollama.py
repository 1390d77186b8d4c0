"""The Ollama stand-in with a vision model (llava:7b) beside a text-only one (llama3:8b)."""

from __future__ import annotations

import pytest
from standins import OllamaStandIn


@pytest.fixture
def ollama():
    server = OllamaStandIn({"llava:7b": "7.2B", "llama3:8b": "8.0B"})
    server.vision = {"llava:7b"}
    yield server
    server.close()
