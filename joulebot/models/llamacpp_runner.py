"""The embedded runner: llama.cpp in-process, weights from a Python package."""

from __future__ import annotations

import math
import time
from typing import Any

from joulebot.config.generation import GenerationSettings
from joulebot.models.catalog import ModelEntry
from joulebot.models.repetition import looping
from joulebot.models.runner import (
    REPETITION,
    Generation,
    Messages,
    Runner,
    RunnerError,
    Sampling,
    TextSink,
    split_reasoning,
)

MESSAGE_OVERHEAD_TOKENS = 7  # the chat template around each message (SmolLM2 ChatML: measured 6-7), rounded up
# llama-cpp-python's own defaults (create_chat_completion), for what a catalog entry leaves out: the
# settings each answer records are the ones it was made with
DEFAULTS = GenerationSettings(temperature=0.2, top_p=0.95, top_k=40, repeat_penalty=1.0)


class LlamaCppRunner(Runner):
    def __init__(self, threads: int, context: int = 2048, seed: int = 0) -> None:
        self.threads = threads
        self.context = context
        self.seed = seed
        self._loaded: dict[str, object] = {}

    def load(self, entry: ModelEntry) -> float:
        if entry.name in self._loaded:
            return 0.0
        path = entry.gguf.path() if entry.gguf else None
        if path is None:
            raise RunnerError(f"model {entry.name}: weights not installed")
        from llama_cpp import Llama  # heavy import, only where the model runs

        t0 = time.perf_counter()
        self._loaded[entry.name] = Llama(
            model_path=str(path),
            n_ctx=entry.context_tokens or self.context,  # the window the front ends check prompts against
            n_threads=self.threads,
            seed=self.seed,
            verbose=False,
        )
        return time.perf_counter() - t0

    def loaded(self, entry: ModelEntry) -> bool:
        return entry.name in self._loaded

    def context_window(self, entry: ModelEntry) -> int:
        return min(entry.context_tokens, self.context)

    def settings(self, entry: ModelEntry, sampling: Sampling | None = None) -> GenerationSettings:
        return super().settings(entry, sampling).over(DEFAULTS)

    def count_tokens(self, entry: ModelEntry, messages: Messages) -> int:
        """Exact per message (the model's own tokenizer), plus the template's markers."""
        self.load(entry)
        llm: Any = self._loaded[entry.name]  # llama_cpp.Llama (untyped)
        counts = [len(llm.tokenize(m["content"].encode(), add_bos=False)) for m in messages]
        return sum(counts) + MESSAGE_OVERHEAD_TOKENS * len(messages)

    def token_bound(self, entry: ModelEntry, messages: Messages) -> int:
        """Byte-level BPE: never more tokens than UTF-8 bytes (no tokenizer call: 0.2 ms saved per answer)."""
        return sum(len(m["content"].encode()) for m in messages) + MESSAGE_OVERHEAD_TOKENS * len(messages)

    def generate(
        self,
        entry: ModelEntry,
        messages: Messages,
        max_tokens: int,
        sink: TextSink | None = None,
        sampling: Sampling | None = None,
    ) -> Generation:
        self.load(entry)
        llm = self._loaded[entry.name]
        settings = self.settings(entry, sampling)
        watcher = _Watcher(llm, sink)
        asked = sampling.asked() if sampling is not None else {}  # stop and seed too
        t0 = time.perf_counter()
        try:
            out = llm.create_chat_completion(  # type: ignore[attr-defined]
                messages=messages,
                max_tokens=max_tokens,
                logits_processor=[watcher],
                **{**settings.given(), "seed": self.seed, **asked},
            )
        except ValueError as exc:  # llama.cpp reports an over-long prompt this way
            raise RunnerError(f"model {entry.name} could not answer: {exc}") from exc
        seconds = time.perf_counter() - t0
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        text, reasoning = split_reasoning(choice["message"].get("content") or "")
        return Generation(
            text=text,
            reasoning=reasoning,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            first_token_s=None if watcher.first_at is None else watcher.first_at - t0,
            finish_reason=REPETITION if watcher.looping else choice.get("finish_reason"),
            settings=settings,
        )


class _Watcher:
    """A logits processor that sees the tokens evaluated so far before each new one is sampled: it
    feeds the answer's text to the sink when it is due, and once the answer loops (`looping`) it
    leaves the end-of-text token the only choice, so llama.cpp ends the answer there.
    Its first call comes when the prompt is read (prefill done): the first-token time.

    (Streaming mode would lose llama.cpp's exact token counts; this keeps them.)
    """

    def __init__(self, llm: Any, sink: TextSink | None) -> None:
        self.llm, self.sink = llm, sink
        self.prompt_len: int | None = None
        self.looping = False
        self.first_at: float | None = None  # time.perf_counter() of the first call

    def __call__(self, input_ids, scores):  # numpy arrays, as llama.cpp passes them
        if self.prompt_len is None:
            self.first_at = time.perf_counter()
            self.prompt_len = len(input_ids)  # the first call: the prompt is evaluated, nothing sampled yet
            return scores
        if not self.looping:
            answer = self.llm.detokenize(list(input_ids[self.prompt_len :])).decode("utf-8", errors="ignore")
            self.looping = looping(answer)
            if self.sink is not None and self.sink.due():
                self.sink.put(answer)
        if self.looping:
            scores[:] = -math.inf
            scores[self.llm.token_eos()] = 0.0
        return scores
