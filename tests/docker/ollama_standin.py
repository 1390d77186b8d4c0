"""The Ollama stand-in (tests/standins.py) on port 11434 of every address: a container of the compose
stack's tests, in place of the ollama service."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standins import OllamaStandIn


class ServedOllama(OllamaStandIn):
    address = ("0.0.0.0", 11434)


if __name__ == "__main__":
    ServedOllama()
    print("Ollama stand-in on :11434", flush=True)
    threading.Event().wait()
