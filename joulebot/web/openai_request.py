"""A `/v1/chat/completions` body, checked at the edge: what joulebot runs (the model, the messages as
a system prompt, earlier turns and the question, the answer's length, the sampling) and a 400 naming
the parameter for what it cannot do (several choices, tools, a response schema, log-probabilities).
Fields joulebot does not know are ignored, as OpenAI-compatible servers do."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulebot.exchange import Turn
from joulebot.models.runner import Sampling
from joulebot.web.openai_errors import ApiError, unsupported

SEED_MAX = 2**32 - 1  # llama.cpp's seed is 32 bits
TOKENS_MAX = 2**31 - 1


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None
    image_url: ImageUrl | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class JoulebotOptions(BaseModel):
    """The `joulebot` extension field."""

    model_config = ConfigDict(extra="ignore")

    box: str | None = Field(default=None, min_length=1, max_length=128)  # pin a box, as X-Joulebot-Box does
    # continue from this answer of yours (its history id): its thread is the earlier turns
    parent_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    # ask with the images of this answer of yours (its history id), kept by KEEP_IMAGES: a retry's
    images_of: int | None = Field(default=None, ge=1, le=2**31 - 1)


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=TOKENS_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=TOKENS_MAX)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    n: int | None = Field(default=None, ge=1, le=128)
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    joulebot: JoulebotOptions | None = None


def parse_body(raw: bytes) -> ChatBody:
    """The body, or ApiError 400 naming what is wrong with it."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    try:
        body = ChatBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}", param=param, code="invalid_value") from None
    _refuse_unsupported(body)
    return body


def _refuse_unsupported(body: ChatBody) -> None:
    if body.n not in (None, 1):
        raise unsupported("n", "more than one choice")
    if body.tools or body.functions:
        raise unsupported("tools" if body.tools else "functions", "calling tools")
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise unsupported("response_format", f"a response format of type {kind!r} (only text)")
    if body.logprobs or body.top_logprobs:
        raise unsupported("logprobs" if body.logprobs else "top_logprobs", "log-probabilities")


def _data_url(url: str, param: str) -> bytes:
    """The bytes of a `data:` URL (base64); joulebot fetches nothing from elsewhere."""
    head, comma, data = url.partition(",")
    if not (url.startswith("data:") and comma and head.endswith(";base64")):
        raise ApiError(400, f"{param}: only base64 data: URLs (joulebot fetches no image)", param=param)
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise ApiError(400, f"{param}: the data: URL is not valid base64", param=param) from None


def _content(message: Message, index: int) -> tuple[str, list[tuple[str, bytes]]]:
    """The message's text (NUL characters dropped: no database stores them in text) and its images."""
    if message.content is None or isinstance(message.content, str):
        return (message.content or "").replace("\x00", ""), []
    texts: list[str] = []
    images: list[tuple[str, bytes]] = []
    for number, part in enumerate(message.content):
        param = f"messages[{index}].content[{number}]"
        if part.type == "text":
            texts.append(part.text or "")
        elif part.type == "image_url" and part.image_url is not None:
            images.append((f"image-{len(images) + 1}", _data_url(part.image_url.url, param)))
        else:
            raise unsupported(param, f"a {part.type!r} part (text and image_url only)")
    return "\n".join(texts).replace("\x00", ""), images


@dataclass
class Conversation:
    system: str | None
    turns: list[Turn]  # earlier turns, oldest first: their text
    question: str
    images: list[tuple[str, bytes]]  # (name, bytes) of the question's images, not read yet
    earlier_images: list[list[tuple[str, bytes]]]  # each earlier turn's, likewise (shown to the model again)


def conversation(body: ChatBody) -> Conversation:
    """The messages as joulebot asks: every system (or developer) message joins the system prompt; the
    last message is the question (with its images) and must be the user's."""
    system: list[str] = []
    turns: list[Turn] = []
    images: list[list[tuple[str, bytes]]] = []  # each turn's
    for index, message in enumerate(body.messages):
        if message.role in ("tool", "function"):
            raise unsupported(f"messages[{index}].role", f"a {message.role!r} message")
        text, attached = _content(message, index)
        if message.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Turn(role=message.role, content=text))  # type: ignore[arg-type]
            images.append(attached)
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "the last message (after any system ones) must be the user's", param="messages")
    prompt = "\n\n".join(s for s in system if s.strip()) or None
    return Conversation(prompt, turns[:-1], turns[-1].content, images[-1], images[:-1])


def sampling(body: ChatBody) -> Sampling | None:
    """What the body set of the sampling (None when nothing: the runner's defaults, as for chats)."""
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > 4 or any(not s for s in stop):
        raise ApiError(400, "stop: up to 4 non-empty sequences", param="stop", code="invalid_value")
    chosen = Sampling(temperature=body.temperature, top_p=body.top_p, stop=stop, seed=body.seed)
    return None if chosen.is_default() else chosen


def answer_tokens(body: ChatBody, most: int) -> int:
    """The answer's length: what the client asked, at most MAX_TOKENS."""
    wanted = body.max_completion_tokens or body.max_tokens
    return most if wanted is None else min(wanted, most)
