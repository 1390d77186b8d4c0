"""Will a prompt fit a model's context window with room for the answer? Checked before queueing.

Honest and cheap, per runner:
- llama.cpp (SmolLM2): its tokenizer is byte-level BPE, so a prompt never has more
  tokens than UTF-8 bytes. A prompt that fits by that bound is accepted without
  counting; a longer one is counted exactly with the model's own tokenizer,
  loaded vocabulary-only (no weights, milliseconds) from the installed GGUF.
- Ollama: the server's tokenizer is out of reach without a request, so the count
  is an estimate of one token per 4 UTF-8 bytes (about right for English, low
  for code and most non-Latin scripts). Only a prompt that does not fit even by
  that estimate is refused; a borderline one can still be cut short by the server.
Either way `TEMPLATE_TOKENS` is reserved for the chat template around the prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from joulebot.models.catalog import ModelEntry

TEMPLATE_TOKENS = 40  # SmolLM2's chat template with its default system prompt is 31 tokens
OLLAMA_BYTES_PER_TOKEN = 4


class ContextOverflow(ValueError):
    """The prompt and the answer cannot both fit; `str()` says by how much, for the user."""


@dataclass(frozen=True)
class PromptSize:
    tokens: int
    exact: bool  # counted with the model's tokenizer, else an estimate or a bound


@lru_cache(maxsize=4)
def _tokenizer(gguf_path: str):
    from llama_cpp import Llama  # only for long prompts to the embedded model

    return Llama(model_path=gguf_path, vocab_only=True, verbose=False)


def prompt_size(entry: ModelEntry, prompt: str, room: int) -> PromptSize:
    """The prompt's tokens; exact only where the cheap bound does not already show it fits in `room`."""
    size = len(prompt.encode("utf-8"))
    if entry.runner == "ollama":
        return PromptSize(math.ceil(size / OLLAMA_BYTES_PER_TOKEN), exact=False)
    if size <= room:
        return PromptSize(size, exact=False)  # at most one token per byte: it fits
    path = entry.gguf.path() if entry.gguf else None
    if path is None:
        return PromptSize(size, exact=False)
    return PromptSize(len(_tokenizer(str(path)).tokenize(prompt.encode("utf-8"), add_bos=False)), exact=True)


def check_fits(entry: ModelEntry, prompt: str, max_tokens: int) -> None:
    """ContextOverflow if the prompt plus `max_tokens` of answer cannot fit the model's context window."""
    room = entry.context_tokens - TEMPLATE_TOKENS - max_tokens
    if room <= 0:
        raise ContextOverflow(
            f"MAX_TOKENS={max_tokens} leaves no room for a prompt in {entry.name}'s context of"
            f" {entry.context_tokens} tokens"
        )
    size = prompt_size(entry, prompt, room)
    if size.tokens > room:
        how = "" if size.exact else " (estimated)"
        raise ContextOverflow(
            f"the prompt is {size.tokens} tokens{how}; {entry.name} has a context of {entry.context_tokens} tokens,"
            f" which leaves {room} for the prompt after {max_tokens} for the answer: please shorten it"
        )
