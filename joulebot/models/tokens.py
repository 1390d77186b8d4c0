"""Will a prompt fit a model's context window with room for the answer? Checked before queueing.

Honest and cheap, per runner:
- llama.cpp (SmolLM2): its tokenizer is byte-level BPE, so a prompt never has more
  tokens than UTF-8 bytes. A prompt that fits by that bound is accepted without
  counting; a longer one is counted exactly with the model's own tokenizer,
  loaded vocabulary-only (no weights; ~0.4 s on the 2-core VM) from the installed GGUF.
- Ollama: the server's tokenizer is out of reach without a request, so the count
  is an estimate of one token per 4 UTF-8 bytes (about right for English, low
  for code and most non-Latin scripts). Only a prompt that does not fit even by
  that estimate is refused; a borderline one can still be cut short by the server.
Either way `TEMPLATE_TOKENS` is reserved for the chat template around the prompt.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass

from joulebot.models.catalog import ModelEntry

TEMPLATE_TOKENS = 40  # SmolLM2's chat template with its default system prompt is 30 tokens (BOS included)
OLLAMA_BYTES_PER_TOKEN = 4


class ContextOverflow(ValueError):
    """The prompt and the answer cannot both fit; `str()` says by how much, for the user."""


@dataclass(frozen=True)
class PromptSize:
    tokens: int
    exact: bool  # counted with the model's tokenizer, else an estimate or a bound


def _count_with_tokenizer(gguf_path: str, text: str) -> int:
    """Exact tokens by the model's own tokenizer: vocabulary only, about 0.4 s, freed at once (never cached)."""
    from llama_cpp import Llama  # only for long prompts to the embedded model

    with contextlib.redirect_stderr(io.StringIO()):  # llama.cpp's log callback prints a context warning here
        vocab = Llama(model_path=gguf_path, vocab_only=True, verbose=False)
    with contextlib.closing(vocab):
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False))


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
    return PromptSize(_count_with_tokenizer(str(path), prompt), exact=True)


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
