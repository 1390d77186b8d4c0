"""Which models exist, what they are, and which runner serves each."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel


class GgufFile(BaseModel):
    package: str  # a Python package that ships the weights: nothing is downloaded at run time
    file: str

    def path(self) -> Path | None:
        try:
            candidate = resources.files(self.package) / self.file
        except ModuleNotFoundError:
            return None
        path = Path(str(candidate))
        return path if path.is_file() else None


class ModelEntry(BaseModel):
    name: str
    runner: Literal["llamacpp", "ollama"]
    family: str
    parameters_b: float
    quantization: str = ""
    description: str = ""
    aliases: list[str] = []
    gguf: GgufFile | None = None

    def is_available(self) -> bool:
        if self.runner == "llamacpp":
            return self.gguf is not None and self.gguf.path() is not None
        return False  # the Ollama runner is not wired in yet

    def size_label(self) -> str:
        if self.parameters_b < 1:
            return f"{self.parameters_b * 1000:.0f}M"
        return f"{self.parameters_b:g}B"


class UnknownModelError(LookupError):
    def __init__(self, name: str, choices: list[str]) -> None:
        self.name = name
        self.choices = choices
        super().__init__(f"unknown model {name!r}; available: {', '.join(choices) or 'none'}")


@lru_cache(maxsize=1)
def catalog() -> tuple[ModelEntry, ...]:
    data = resources.files("joulebot.config") / "data" / "models.json"
    return tuple(ModelEntry.model_validate(m) for m in json.loads(data.read_text(encoding="utf-8"))["models"])


def available_models() -> list[ModelEntry]:
    return [m for m in catalog() if m.is_available()]


def resolve_model(name: str) -> ModelEntry:
    """The available catalog entry for a name or alias (case-insensitive)."""
    wanted = name.strip().lower()
    available = available_models()
    for entry in available:
        if wanted == entry.name or wanted in entry.aliases:
            return entry
    raise UnknownModelError(name, [m.name for m in available])
