"""The embedded runner: llama.cpp in-process, weights from a Python package."""

from __future__ import annotations

import time

from joulebot.models.catalog import ModelEntry
from joulebot.models.runner import Generation, Runner, RunnerError, split_reasoning


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

    def generate(self, entry: ModelEntry, prompt: str, max_tokens: int) -> Generation:
        self.load(entry)
        llm = self._loaded[entry.name]
        t0 = time.perf_counter()
        try:
            out = llm.create_chat_completion(  # type: ignore[attr-defined]
                messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, seed=self.seed
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
            finish_reason=choice.get("finish_reason"),
        )
