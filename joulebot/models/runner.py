"""The interface every runner implements, and what a generation returns."""

from __future__ import annotations

from abc import ABC, abstractmethod

from pydantic import BaseModel

from joulebot.models.catalog import ModelEntry


class Generation(BaseModel):
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the generation itself
    finish_reason: str | None = None


class RunnerError(RuntimeError):
    """A model could not answer; the message is safe to show to the user."""


class Runner(ABC):
    @abstractmethod
    def load(self, entry: ModelEntry) -> float:
        """Make the model ready (weights in memory); returns the seconds it took, 0 if warm."""

    @abstractmethod
    def generate(self, entry: ModelEntry, prompt: str, max_tokens: int) -> Generation: ...
