"""The interface every runner implements, and what a generation returns."""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from joulebot.config.generation import GenerationSettings
from joulebot.models.catalog import ModelEntry

_THINK = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


def split_reasoning(text: str) -> tuple[str, str]:
    """(answer, reasoning): `<think>` blocks of reasoning models are kept out of the answer."""
    reasoning = "\n\n".join(part.strip() for part in _THINK.findall(text))
    return _THINK.sub("", text).strip(), reasoning


class Sampling(BaseModel):
    """How the next token is chosen, where a request set it (None: the runner's own default). They
    change what an answer costs: answers asked with any of them stay out of the statistics."""

    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = []
    seed: int | None = None

    def is_default(self) -> bool:
        return self == Sampling()

    def asked(self) -> dict[str, Any]:
        """What the request set, by the names llama.cpp and Ollama's `options` use."""
        return self.model_dump(exclude_defaults=True)

    def over(self, settings: GenerationSettings) -> GenerationSettings:
        """The model's generation settings with the request's temperature and top_p over them: what an
        answer records as made with."""
        return settings.model_copy(update={k: v for k, v in self.asked().items() if k in ("temperature", "top_p")})


class Generation(BaseModel):
    text: str  # what the user sees
    reasoning: str = ""  # `<think>` content, stored but not shown
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the generation itself
    first_token_s: float | None = None
    finish_reason: str | None = None  # "stop", "length" (MAX_TOKENS), REPETITION
    runner_stats: dict[str, float] = {}  # the runner's own timings (Ollama: total/load/prompt_eval/eval, s)
    settings: GenerationSettings = GenerationSettings()  # the sampling settings it was made with


# The finish reason of an answer the runner ended because it was looping (models/repetition.py)
REPETITION = "repetition"


# chat messages: {"role": "system"|"user"|"assistant", "content": ...}; a user message with images
# also has "images": [base64, ...] (Ollama's form)
Messages = list[dict[str, Any]]


class TextSink:
    """Where a runner puts the answer while it grows (the worker publishes it for the front ends).

    A runner asks `due()` at every token, cheaply, and builds the text only when it is:
    the sink decides how often (at most every `interval_s`), so streaming costs almost nothing
    inside the measured window. The first words go out one interval after the start: the front
    ends look about once a second, and an answer done sooner is delivered whole (no Redis write).
    """

    def __init__(self, publish: Callable[[str], None], interval_s: float = 0.5, clock=time.monotonic) -> None:
        self._publish, self.interval_s, self._clock = publish, interval_s, clock
        self._next = clock() + interval_s
        self.published = 0

    def due(self) -> bool:
        return self._clock() >= self._next

    def put(self, text: str) -> None:
        """Publish the text so far (without reasoning), and wait `interval_s` before the next."""
        shown = split_reasoning(text)[0]
        if shown:  # reasoning alone is not shown: ask again at the next token
            self._next = self._clock() + self.interval_s
            self._publish(shown)
            self.published += 1


# a runner that reports more load time than this inside an answer loaded the model again (Ollama
# evicted it between the warm-up and the answer): that answer's energy includes a reload
RELOAD_S = 0.1


class RunnerError(RuntimeError):
    """A model could not answer; the message is safe to show to the user."""


class Runner(ABC):
    @abstractmethod
    def load(self, entry: ModelEntry) -> float:
        """Make the model ready (weights in memory); returns the seconds it took, 0 if warm."""

    def loaded(self, entry: ModelEntry) -> bool:
        """Known to be in memory without asking anyone (False: `load` may take a while)."""
        return False

    @abstractmethod
    def generate(
        self,
        entry: ModelEntry,
        messages: Messages,
        max_tokens: int,
        sink: TextSink | None = None,
        sampling: Sampling | None = None,
    ) -> Generation:
        """Answer the last message given the ones before it; feed `sink` the text as it grows.
        `sampling`: what the request set of temperature, top_p, stop and seed (the rest: defaults)."""

    @abstractmethod
    def count_tokens(self, entry: ModelEntry, messages: Messages) -> int:
        """How many context tokens these messages take (exact where the runner has the tokenizer)."""

    def token_bound(self, entry: ModelEntry, messages: Messages) -> int:
        """At least `count_tokens`, and cheaper to get: where it already fits, nothing is counted."""
        return self.count_tokens(entry, messages)

    def settings(self, entry: ModelEntry, sampling: Sampling | None = None) -> GenerationSettings:
        """The sampling settings `entry` is run with: the request's (`sampling`), else the catalog's, else
        the runner's default."""
        return entry.generation if sampling is None else sampling.over(entry.generation)

    def context_window(self, entry: ModelEntry) -> int:
        """The tokens this runner gives the model (prompt and answer together)."""
        return entry.context_tokens
