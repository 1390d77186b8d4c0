"""The tables. An Exchange keeps the footer's figures as columns (for queries and
statistics) and the whole Result as JSON (so any footer can be shown again)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from joulebot.history.rollup import STATS_ROLLUP

# The statistics' running sums per model, task, box, meter and kind of answer (migration 0021): a
# plain table, kept by HistoryStore with each write; see rollup.py.
__all__ = ["STATS_ROLLUP", "ChatPreference", "Exchange", "ExchangeMessage", "User"]


def now() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    platform_user_id: str = Field(max_length=64)
    default_model: str | None = Field(default=None, max_length=128)
    units: str | None = Field(default=None, max_length=16)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    box: str | None = Field(default=None, max_length=128)  # pinned with /box NAME; None: routing decides
    created_at: datetime = Field(default_factory=now)
    # the energy of the answers forgotten on the day that began at `forgotten_since` (migration 0027): it still
    # counts against the user's daily energy budget, so that forgetting does not reset it
    forgotten_since: datetime | None = None
    forgotten_j: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    forgotten_estimated_j: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    forgotten_partial_j: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})  # migration 0029


class ChatPreference(SQLModel, table=True):
    """What a group chat chose for everyone in it (its /system prompt)."""

    __tablename__ = "chat_preferences"
    __table_args__ = (UniqueConstraint("platform", "chat_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Exchange(SQLModel, table=True):
    __tablename__ = "exchanges"
    __table_args__ = (
        # the answers without a total energy, which the statistics' rollup leaves out (migration 0022): /metrics
        # counts them per its labels out of this small index
        Index(
            "ix_exchanges_no_energy",
            *("model", "box", "category", "energy_source", "energy_measured", "meter_failures"),
            sqlite_where=text("energy_total_j IS NULL"),
            postgresql_where=text("energy_total_j IS NULL"),
        ),
        Index("ix_exchanges_started_at", "started_at"),
        Index("ix_exchanges_box_id", "box", "id"),  # a box's latest answer in one probe (migration 0022)
        # the energy a user's (or a platform's) answers drew since the day began, for the daily budgets on
        # every question asked: a range of the day's rows (migration 0027)
        Index("ix_exchanges_user_started", "user_id", "started_at"),
        Index("ix_exchanges_platform_started", "platform", "started_at"),
        # one benchmark run's rows (request ids starting with its prefix) through an index (migration 0021):
        # LIKE 'prefix%' on PostgreSQL whatever the collation; SQLite takes a range on the unique index
        Index(
            "ix_exchanges_request_id_pattern", "request_id", postgresql_ops={"request_id": "varchar_pattern_ops"}
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=64, unique=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)  # None once forgotten
    platform: str = Field(max_length=32)
    model: str = Field(max_length=128, index=True)
    category: str = Field(max_length=32, index=True)  # code, math, questions, sql, translation
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    answer: str = Field(sa_column=Column(Text, nullable=False))
    prompt_tokens: int
    completion_tokens: int
    started_at: datetime
    seconds: float
    load_s: float
    energy_total_j: float | None
    energy_attributable_j: float | None
    idle_w: float | None
    energy_source: str = Field(max_length=32)
    energy_measured: bool
    energy_uncertainty_j: float | None = None  # ± J, about 95 % (None: stored before bands existed)
    energy_attributable_uncertainty_j: float | None = None
    energy_scope: str | None = Field(default=None, max_length=16)  # machine, components (cpu+gpu only)
    energy_includes_reload: bool = False  # the model was loaded again inside the measured window
    # the total split at the first token (migration 0025): reading the prompt, then generating; None: not split
    prefill_j: float | None = None
    prefill_uncertainty_j: float | None = None
    decode_j: float | None = None
    decode_uncertainty_j: float | None = None
    intensity_g_per_kwh: float
    intensity_zone: str = Field(max_length=32)
    intensity_provenance: str = Field(max_length=16)
    operational_g: float | None
    embodied_g: float
    sci_g: float | None
    box: str = Field(max_length=128)  # statistics are per box (indexed with the id: see __table_args__)
    result: dict = Field(sa_column=Column(JSON, nullable=False))
    # (seconds since the window's start, watts) of a sampled meter (the wall meter, polled NVML, the estimate's
    # CPU time); None without samples
    power_trace: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    share_token: str | None = Field(default=None, max_length=64, unique=True)  # the answer's private link
    meter_failures: int = 0  # meters that failed in this answer's window (the figure came from the next source)
    created_at: datetime = Field(default_factory=now)
    # The benchmark's score, set after the answer was measured; score_note None = not scored yet,
    # correct None with a note = unscored (no reference), never counted as wrong.
    correct: bool | None = None
    score: float | None = None  # 1/0, share of unit tests passed, or chrF
    score_note: str | None = Field(default=None, max_length=200)
    # conversations (migration 0015): a first question has turn 1 and no parent
    conversation_id: str | None = Field(default=None, max_length=32, index=True)
    parent_id: int | None = Field(default=None, index=True)  # the exchange this one continued
    turn: int = 1
    context_turns: int = 0  # earlier turns the model received (after trimming)
    chat_id: str | None = Field(default=None, max_length=64)
    # the platform message that showed the answer first (its status message); every message that shows a
    # piece of it, this one too, is an ExchangeMessage (migration 0020): replies are looked up there
    message_ref: str | None = Field(default=None, max_length=64)
    system_prompt: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # what the request set of temperature, top_p, stop, seed (migration 0023); None: the runner's defaults.
    # Such answers cost what their settings make them cost: they stay out of the statistics (rollup.py).
    sampling: dict | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    # each image the question carried: name, sha256, size_bytes, width, height, source_format (migration
    # 0024), never the image; None: none.
    images: list | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    # the images the model received with it: the question's own and those earlier turns carried (migration
    # 0028). Answers with images are a statistics basis of their own (rollup.py).
    image_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # the sampling settings the answer was made with (Result.generation_settings; migration 0026)
    generation_settings: str = Field(default="", max_length=128, sa_column_kwargs={"server_default": ""})


class ExchangeMessage(SQLModel, table=True):
    """A platform message that shows an exchange's answer, or one piece of a long one (migration 0020).

    A reply to any of them continues that exchange's conversation. Forgetting and retention delete
    these rows with the words: which messages showed an answer says who talked in which chat.
    """

    __tablename__ = "exchange_messages"
    __table_args__ = (Index("ix_exchange_messages_message", "platform", "chat_id", "message_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    chat_id: str = Field(max_length=64)
    message_ref: str = Field(max_length=64)
    exchange_id: int = Field(foreign_key="exchanges.id", index=True)
