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

An image takes the tokens its model's vision encoder makes of it (`image_tokens`), from the catalog
(config/data/models.json, each figure's source in docs/vision-tokens.md): LLaVA 1.6 up to 2,880
(an overview and up to four tiles of 576), Moondream 2 729, Gemma 3 256 (+4 around them), MiniCPM-V
2.6 up to 640 (+ slice markers), Llama 3.2 Vision 1 (its images reach the model by cross-attention),
Qwen2.5-VL one per 28×28 pixels of the image as Ollama resizes it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from joulebot.models.catalog import ModelEntry

TEMPLATE_TOKENS = 40  # SmolLM2's chat template with its default system prompt is 30 tokens (BOS included)
OLLAMA_BYTES_PER_TOKEN = 4
# A vision model the catalog does not know (Ollama's capabilities say it sees): between the fixed-size
# encoders (256 to 729 tokens) and the tiling ones (up to 2,880), a guess
DEFAULT_IMAGE_TOKENS = 1024
# Qwen2.5-VL in Ollama (model/models/qwen25vl/process_image.go): the image resized to multiples of
# 28 px between 56×56 and 2 Mi pixels, one token per 28×28, and a vision start and end token around them
PATCH_MIN_PIXELS, PATCH_MAX_PIXELS, PATCH_WRAPPER = 56 * 56, 2 << 20, 2


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


def image_tokens(entry: ModelEntry, width: int, height: int) -> int:
    """The tokens one image of `width`×`height` takes of `entry`'s context window."""
    patch = entry.image_patch_px
    if not patch:
        return entry.image_tokens or DEFAULT_IMAGE_TOKENS
    across, down = round(width / patch), round(height / patch)  # Ollama's SmartResize, in patches
    if across * down * patch * patch > PATCH_MAX_PIXELS:
        beta = math.sqrt(width * height / PATCH_MAX_PIXELS)
        across, down = math.floor(width / beta / patch), math.floor(height / beta / patch)
    elif across * down * patch * patch < PATCH_MIN_PIXELS:
        beta = math.sqrt(PATCH_MIN_PIXELS / (width * height))
        across, down = math.ceil(width * beta / patch), math.ceil(height * beta / patch)
    return across * down + PATCH_WRAPPER


def encoded_image_tokens(entry: ModelEntry, data: str) -> int:
    """`image_tokens` of an image as the runner gets it (base64): its size read from its header, where
    the count depends on it."""
    if not entry.image_patch_px:
        return image_tokens(entry, 0, 0)
    from PIL import Image  # only the worker of a model whose count follows the size reads an image here

    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        return image_tokens(entry, *image.size)


def check_fits(entry: ModelEntry, prompt: str, max_tokens: int, images: Sequence[tuple[int, int]] = ()) -> None:
    """ContextOverflow if the prompt and its images (width, height) plus `max_tokens` of answer cannot fit
    the model's context window."""
    pictures = sum(image_tokens(entry, width, height) for width, height in images)
    room = entry.context_tokens - TEMPLATE_TOKENS - max_tokens - pictures
    if room <= 0 and not pictures:
        raise ContextOverflow(
            f"MAX_TOKENS={max_tokens} leaves no room for a prompt in {entry.name}'s context of"
            f" {entry.context_tokens} tokens"
        )
    size = prompt_size(entry, prompt, max(room, 0))
    if size.tokens > room:
        how = "" if size.exact else " (estimated)"
        seen = f" and its {len(images)} image{'s' if len(images) > 1 else ''} {pictures:,}" if pictures else ""
        fewer = "send fewer images or a shorter prompt" if pictures else "please shorten it"
        raise ContextOverflow(
            f"the prompt is {size.tokens} tokens{how}{seen}; {entry.name} has a context of"
            f" {entry.context_tokens} tokens, which leaves {room + pictures} for the prompt after {max_tokens} for the"
            f" answer: {fewer}"
        )
