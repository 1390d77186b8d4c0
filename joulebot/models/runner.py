"""The interface every runner implements, and what a generation returns."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

from pydantic import BaseModel

from joulebot.models.catalog import ModelEntry

_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


def split_reasoning(text: str) -> tuple[str, str]:
    """(answer, reasoning): `<think>` blocks of reasoning models are kept out of the answer."""
    reasoning = "\n\n".join(part.strip() for part in _THINK.findall(text))
    return _THINK.sub("", text).strip(), reasoning


class Generation(BaseModel):
    text: str  # what the user sees
    reasoning: str = ""  # `<think>` content, stored but not shown
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the generation itself
    first_token_s: float | None = None
    finish_reason: str | None = None
    runner_stats: dict[str, float] = {}  # the runner's own timings (Ollama: total/load/prompt_eval/eval, s)


class RunnerError(RuntimeError):
    """A model could not answer; the message is safe to show to the user."""


class Runner(ABC):
    @abstractmethod
    def load(self, entry: ModelEntry) -> float:
        """Make the model ready (weights in memory); returns the seconds it took, 0 if warm."""

    @abstractmethod
    def generate(self, entry: ModelEntry, prompt: str, max_tokens: int) -> Generation: ...
