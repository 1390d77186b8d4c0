"""The production runner: models served by Ollama on the measurement box.

Streaming chat, so the first-token time is known; token counts and durations
come from Ollama's final chunk. `load()` asks Ollama to load the model (and keep
it loaded for `keep_alive`) before the measured window opens.

Every request carries `options.num_ctx`: the catalog's context window for the
model. Without it the server picks its own default (2048 or more, by version and
memory) and silently truncates a longer prompt, so joulebot's context check and
the window the model really runs with could drift apart. The load sends the same
value: Ollama reloads a model whose `num_ctx` changes, and a reload inside the
measured window would be billed to the answer.

A model this runner answered with a moment ago (`recent_s`), without a reload, is
still loaded (Ollama keeps it for `keep_alive`): back-to-back answers skip the load
request (an HTTP round trip, a quarter of the box's own work per answer with a fast
model). Should another client of the server evict it meanwhile, the answer's own
`load_duration` says so and the station marks that answer "includes a reload".
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator

import httpx
import ollama

from joulebot.models.catalog import ModelEntry, OllamaModel, parse_parameter_size
from joulebot.models.repetition import looping
from joulebot.models.runner import (
    RELOAD_S,
    REPETITION,
    Generation,
    Messages,
    Runner,
    RunnerError,
    Sampling,
    TextSink,
    split_reasoning,
)
from joulebot.models.tokens import encoded_image_tokens

NS = 1e9


class OllamaRunner(Runner):
    def __init__(
        self,
        host: str,
        keep_alive: str = "30m",
        timeout_s: float = 300.0,
        redact: Callable[[str], str] = lambda text: text,
        recent_s: float = 2.0,
    ) -> None:
        self.host = host
        self.recent_s = recent_s
        self._answered_at: dict[str, float] = {}  # model → when it last answered without a reload
        self.redact = redact  # Settings.redact: the server's messages are upstream text
        self.keep_alive = keep_alive
        self.client = ollama.Client(host=host, timeout=timeout_s)

    def _tag(self, entry: ModelEntry) -> str:
        return entry.ollama_tag or entry.name

    def _error(self, entry: ModelEntry | None, exc: Exception) -> RunnerError:
        return RunnerError(self.redact(self._reason(entry, exc)))

    def _reason(self, entry: ModelEntry | None, exc: Exception) -> str:
        name = entry.name if entry else "Ollama"
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return f"the Ollama server at {self.host} is not reachable"
        if isinstance(exc, ollama.ResponseError):
            message = str(exc.error)
            if exc.status_code == 404 or "not found" in message.lower():
                return f"{name} is not on the Ollama server (an admin can: joulebot models pull {name})"
            if "memory" in message.lower():
                return f"{name} does not fit in this box's memory ({message})"
            return f"Ollama could not run {name}: {message}"
        if isinstance(exc, httpx.TimeoutException):
            return f"Ollama did not answer in time for {name}"
        return f"the answer from Ollama broke off ({type(exc).__name__})"

    def _options(self, entry: ModelEntry, **more: object) -> dict[str, object]:
        """The model options of every request for `entry`: its context window first (see the module)."""
        return {"num_ctx": self.context_window(entry), **more}

    @staticmethod
    def _sampling(sampling: Sampling | None) -> dict[str, object]:
        """Ollama's options for what the request set (seed 0 unless it set one: answers repeat)."""
        return {"seed": 0, **(sampling.asked() if sampling is not None else {})}

    def loaded(self, entry: ModelEntry) -> bool:
        return time.monotonic() - self._answered_at.get(entry.name, float("-inf")) < self.recent_s

    def load(self, entry: ModelEntry) -> float:
        if self.loaded(entry):
            return 0.0
        try:
            response = self.client.generate(
                model=self._tag(entry), prompt="", keep_alive=self.keep_alive, options=self._options(entry)
            )
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as exc:
            raise self._error(entry, exc) from None
        return (response.load_duration or 0) / NS

    def count_tokens(self, entry: ModelEntry, messages: Messages) -> int:
        """An upper estimate (Ollama exposes no tokenizer): 1 token per 3 characters, 4 per message,
        and what each image takes of the model's context (models/tokens.py `image_tokens`).

        English averages about 4 characters per token: this keeps trimming on the safe side.
        """
        images = sum(encoded_image_tokens(entry, data) for m in messages for data in m.get("images") or ())
        return images + sum(len(m["content"]) // 3 + 4 for m in messages)

    def generate(
        self,
        entry: ModelEntry,
        messages: Messages,
        max_tokens: int,
        sink: TextSink | None = None,
        sampling: Sampling | None = None,
    ) -> Generation:
        parts: list[str] = []
        thinking: list[str] = []
        first_token_s = None
        final = None
        repeating = False
        settings = self.settings(entry, sampling)
        options = {**settings.given(), "num_predict": max_tokens, **self._sampling(sampling)}
        t0 = time.perf_counter()
        try:
            stream = self.client.chat(
                model=self._tag(entry),
                messages=messages,
                stream=True,
                options=self._options(entry, **options),
                keep_alive=self.keep_alive,
            )
            for chunk in stream:
                if chunk.message.content:
                    if first_token_s is None:
                        first_token_s = time.perf_counter() - t0
                    parts.append(chunk.message.content)
                    if looping("".join(parts)):
                        repeating = True
                        if isinstance(stream, Generator):  # hanging up stops the server's generation
                            stream.close()
                        break
                    if sink is not None and sink.due():
                        sink.put("".join(parts))
                if chunk.message.thinking:
                    thinking.append(chunk.message.thinking)
                if chunk.done:
                    final = chunk
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._error(entry, exc) from None
        seconds = time.perf_counter() - t0
        text, reasoning = split_reasoning("".join(parts))
        reasoning = "\n\n".join(filter(None, ["".join(thinking).strip(), reasoning]))
        if repeating:  # hung up: no statistics from the server, so the tokens are counted here (one streamed
            # chunk per token; the prompt by count_tokens' upper estimate); the model answered, so it is loaded
            self._answered_at[entry.name] = time.monotonic()
            return Generation(
                text=text,
                reasoning=reasoning,
                prompt_tokens=self.count_tokens(entry, messages),
                completion_tokens=len(parts),
                seconds=seconds,
                first_token_s=first_token_s,
                finish_reason=REPETITION,
                settings=settings,
            )
        if final is None:
            raise RunnerError(f"the answer from Ollama broke off before it was complete ({entry.name})")
        stats = {
            key: (getattr(final, key) or 0) / NS
            for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
        }
        if stats["load_duration"] > RELOAD_S:  # evicted meanwhile: ask for the load again next time
            self._answered_at.pop(entry.name, None)
        else:
            self._answered_at[entry.name] = time.monotonic()
        return Generation(
            text=text,
            reasoning=reasoning,
            prompt_tokens=final.prompt_eval_count or 0,
            completion_tokens=final.eval_count or 0,
            seconds=seconds,
            first_token_s=first_token_s,
            finish_reason=final.done_reason,
            runner_stats=stats,
            settings=settings,
        )

    def inventory(self) -> list[OllamaModel]:
        """The models the server has, with their parameter sizes."""
        try:
            listed = self.client.list()
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as exc:
            raise self._error(None, exc) from None
        return [
            OllamaModel(
                tag=m.model or "",
                parameters_b=parse_parameter_size(m.details.parameter_size if m.details else None),
                family=(m.details.family or "") if m.details else "",
                quantization=(m.details.quantization_level or "") if m.details else "",
                vision="vision" in self.capabilities(m.model or ""),
            )
            for m in listed.models
            if m.model
        ]

    def capabilities(self, tag: str) -> list[str]:
        """What the server says the model can do ("completion", "vision", "tools", ...); [] if it cannot say."""
        try:
            return list(self.client.show(tag).capabilities or [])
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError):
            return []

    def pull(self, tag: str, progress: Callable[[str, int | None, int | None], None]) -> None:
        """Download a model on the server, reporting (status, completed bytes, total bytes)."""
        try:
            for update in self.client.pull(tag, stream=True):
                progress(update.status or "", update.completed, update.total)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._error(None, exc) from None
