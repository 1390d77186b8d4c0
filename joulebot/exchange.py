"""Request and Result: the plain data that crosses the queue (as JSON)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from joulebot.attachments.parts import ImageInput
from joulebot.carbon import Carbon
from joulebot.metering import Energy
from joulebot.models.runner import Sampling

Units = Literal["joules", "watts"]
Role = Literal["system", "user", "assistant"]
# A started job's stage when the worker reported none: the worker reports "generating" only after
# an earlier stage (loading, warming up, idle power, cooling down) was shown; a warm answer skips
# that Redis round trip.
GENERATING = "generating"


class Turn(BaseModel):
    """One earlier message of a conversation, as the model receives it."""

    role: Literal["user", "assistant"]
    content: str
    images: list[ImageInput] = []  # a question's images, shown again (KEEP_IMAGES kept them)

    def message(self) -> dict[str, Any]:
        """As the model receives it: the images ride on the message as base64, as Ollama takes them."""
        pictures = {"images": [image.data for image in self.images]} if self.images else {}
        return {"role": self.role, "content": self.content, **pictures}


def _now() -> datetime:
    return datetime.now(UTC)


class Routing(BaseModel):
    """Which box was chosen for a Request, and why (set by the front end before queueing)."""

    box: str
    queue: str
    policy: str  # "greenest", "fastest", "pinned", "compare" (B follows A), "moved" (failover), "single"
    reason: str  # for people: "lowest expected CO2e, 50 g/kWh"
    intensity_g_per_kwh: float | None = None  # the box's intensity when it was chosen
    expected_j: float | None = None  # expected energy of the answer on that box, when known
    expected_co2e_g: float | None = None
    expected_wait_s: float | None = None
    category: str | None = None  # the task the expectation was for
    candidates: int = 1  # live boxes that offered the model
    moved_from: str | None = None  # failover: the box that stopped before running it


class Request(BaseModel):
    """Who asked what of which model. Built by bots/, run by the worker."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    platform: str  # "cli", "telegram", "discord"
    user_id: str  # the platform's user id
    chat_id: str | None = None
    model: str
    prompt: str
    units: Units = "joules"
    max_tokens: int = 256
    category: str | None = None  # set by the benchmark; otherwise classified when stored
    routing: Routing | None = None  # the front end's choice of box (None: the one configured queue)
    created_at: datetime = Field(default_factory=_now)
    # A conversation: the system prompt, the earlier turns (oldest first) and where this one hangs.
    system: str | None = None
    turns: list[Turn] = []
    conversation_id: str | None = None  # None: a single question (a new conversation of its own)
    parent_id: int | None = None  # the exchange this one continues (history id)
    turn: int = 1  # 1 for a first question; the n-th question of its conversation
    told_forgotten: bool = False  # the user was already told that the start no longer fits
    images_not_kept: int = 0  # images of earlier turns that could not be shown again (not kept: KEEP_IMAGES)
    told_images_left_out: bool = False  # the user was already told that earlier images were not shown again
    message_ref: str | None = None  # the platform message that will show the answer (replies find it)
    stream: bool = True  # publish the growing answer while it is generated
    # how often (None: the worker's STREAM_INTERVAL_S, the chats' pace; a token stream asks for less)
    stream_interval_s: float | None = Field(default=None, gt=0)
    images: list[ImageInput] = []  # normalised by joulebot.attachments; only a vision model gets them
    sampling: Sampling | None = None  # None: the runner's defaults (the API's temperature, top_p, stop, seed)

    def earlier_images(self) -> int:
        """The images of the earlier turns this request shows the model again (before trimming)."""
        return sum(len(turn.images) for turn in self.turns)

    def without_pixels(self) -> Request:
        """This request as a Result keeps it: each image's name, hash, byte size and dimensions, not
        the image, its earlier turns' images likewise (Results travel back through Redis and are stored
        in history)."""
        if not self.images and not self.earlier_images():
            return self
        turns = [turn.model_copy(update={"images": _unseen(turn.images)}) for turn in self.turns]
        return self.model_copy(update={"images": _unseen(self.images), "turns": turns})

    def messages(self) -> list[dict[str, Any]]:
        """What the model receives: system prompt, earlier turns, this prompt (chat messages), each
        question with its images."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        question = Turn(role="user", content=self.prompt, images=self.images)
        return [*head, *(turn.message() for turn in self.turns), question.message()]


def _unseen(images: list[ImageInput]) -> list[ImageInput]:
    return [image.model_copy(update={"data": ""}) for image in images]


class Result(BaseModel):
    """Everything the footer shows, and everything history stores."""

    request: Request
    answer: str
    model: str
    model_size: str
    prompt_tokens: int
    completion_tokens: int
    generation_s: float
    first_token_s: float | None = None
    finish_reason: str | None = None  # "stop", "length" (cut at max_tokens), "repetition" (stopped looping)
    # the sampling settings it was made with ('temperature=0.2 top_k=40 …'; '' = the server's defaults, or
    # stored before settings were recorded): statistics never pool answers of different settings
    generation_settings: str = ""
    reasoning: str = ""  # a reasoning model's `<think>` text: stored, not shown
    runner_stats: dict[str, float] = {}  # the runner's own timings, seconds
    load_s: float  # model load before the measured window: never inside `energy`
    warmup_energy: Energy | None = None  # the warm-up generation after a load, before the window: never inside
    energy: Energy
    carbon: Carbon
    box: str
    started_at: datetime
    finished_at: datetime
    category: str = "questions"  # the kind of task (joulebot/categories.py)
    hint: str | None = None  # a greener model for this kind of task, from measured history
    exchange_id: int | None = None  # the history row; None if it could not be stored
    context_turns: int = 0  # earlier turns the model received (after trimming)
    dropped_turns: int = 0  # earlier turns left out because they did not fit the context window
    context_images: int = 0  # images of earlier turns the model received again (after trimming)
    dropped_images: int = 0  # images of earlier turns the model did not receive after all
    dropped_images_because: str = ""  # why: "they no longer fit llava's context window", "llama3 cannot see images"
    history_error: str | None = None
    # the user's first answer in history, where the grid zone is the default: its footer says, once, which
    # zone the carbon figures use and how to set the box's own (not looked up otherwise)
    first_answer: bool = False
    share_token: str | None = None  # unguessable: the answer's private page on the dashboard (PUBLIC_URL/a/TOKEN)

    @property
    def routing(self) -> Routing | None:
        """The routing decision this answer followed (it travels inside the Request)."""
        return self.request.routing

    @property
    def image_count(self) -> int:
        """The images the model read for this answer: the question's own and those earlier turns carried."""
        return len(self.request.images) + self.context_images

    @property
    def j_per_token(self) -> float | None:
        if self.energy.total_j is None or self.completion_tokens <= 0:
            return None
        return self.energy.total_j / self.completion_tokens
