"""A `/v1/chat/completions` body, checked at the edge: what joulebot runs (the model, the messages as
a system prompt, earlier turns and the question, the answer's length, the sampling) and a 400 naming
the parameter for what it cannot do (several choices, tools, a response schema, log-probabilities).
Fields joulebot does not know are ignored, as OpenAI-compatible servers do."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from joulebot.exchange import Turn
from joulebot.models.runner import Sampling
from joulebot.web.openai_errors import ApiError, unsupported

SEED_MAX = 2**32 - 1  # llama.cpp's seed is 32 bits
TOKENS_MAX = 2**31 - 1


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class JoulebotOptions(BaseModel):
    """The `joulebot` extension field."""

    model_config = ConfigDict(extra="ignore")

    box: str | None = Field(default=None, min_length=1, max_length=128)  # pin a box, as X-Joulebot-Box does


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


def _text(message: Message, index: int) -> str:
    """The message's text; NUL characters dropped (no database stores them in text)."""
    if message.content is None or isinstance(message.content, str):
        return (message.content or "").replace("\x00", "")
    parts = []
    for part in message.content:
        if part.type != "text":
            raise unsupported(f"messages[{index}].content", f"a {part.type!r} part (only text)")
        parts.append(part.text or "")
    return "\n".join(parts).replace("\x00", "")


def conversation(body: ChatBody) -> tuple[str | None, list[Turn], str]:
    """(system prompt, earlier turns oldest first, the question) from the messages: every system (or
    developer) message joins the system prompt; the last message is the question and must be the user's."""
    system: list[str] = []
    turns: list[Turn] = []
    for index, message in enumerate(body.messages):
        if message.role in ("tool", "function"):
            raise unsupported(f"messages[{index}].role", f"a {message.role!r} message")
        text = _text(message, index)
        if message.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Turn(role=message.role, content=text))  # type: ignore[arg-type]
    if not turns or turns[-1].role != "user":
        raise ApiError(400, "the last message (after any system ones) must be the user's", param="messages")
    return "\n\n".join(s for s in system if s.strip()) or None, turns[:-1], turns[-1].content


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
