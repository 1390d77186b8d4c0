"""Reading and writing history. One HistoryStore per process; it owns the engine."""

from __future__ import annotations

import fcntl
import functools
import math
import re
import statistics
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Engine, String, and_, bindparam, delete, event, insert, make_url, text, update
from sqlalchemy import select as sa_select
from sqlalchemy import true as sa_true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.sql import ColumnElement, FromClause
from sqlmodel import Session, create_engine, select

from joulebot.config.files import private_file, private_umask
from joulebot.exchange import Result
from joulebot.history import rollup
from joulebot.history.tables import ChatPreference, Exchange, ExchangeMessage, User, now

if TYPE_CHECKING:
    from alembic.config import Config


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a share correct: sound for small n and 0 % or 100 %."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class Basis(BaseModel):
    """What makes two energy figures comparable: the same box, the same energy source
    (meter, or sum of meters, or the estimate), and measured vs estimated. Statistics
    are computed within one basis and never compared across two."""

    model_config = ConfigDict(frozen=True)

    box: str
    energy_source: str
    measured: bool

    def label(self) -> str:
        kind = "measured" if self.measured else "estimated, not a measurement"
        return f"{self.box} · {self.energy_source} ({kind})"


class CategoryStats(BaseModel):
    model: str
    category: str
    box: str
    energy_source: str  # never averaged across boxes or meters: each pair is its own row
    measured: bool  # False: every figure of this row is an estimate
    generation_settings: str = ""  # the sampling settings of its answers (rows of other settings are apart)
    settings_shown: bool = False  # rows of other settings of this model stand beside it: `label` names them
    answers: int
    mean_total_j: float
    ci95_total_j: float  # ± J: 95 % confidence interval of the mean (spread and each answer's own band)
    ci95_sci_g: float | None
    mean_attributable_j: float | None
    mean_co2e_g: float | None
    mean_sci_g: float | None
    j_per_token: float | None
    stdev_total_j: float  # spread of the total energy between answers (0 for one answer)
    scored: int = 0  # answers checked against a reference (unscored ones are neither right nor wrong)
    correct: int = 0
    accuracy: float | None = None  # correct ÷ scored
    accuracy_low: float | None = None  # 95 % Wilson interval
    accuracy_high: float | None = None
    j_per_correct: float | None = None  # total energy of the scored answers ÷ correct answers
    sci_per_correct_g: float | None = None  # SCI of the scored answers ÷ correct answers

    @property
    def settings_note(self) -> str:
        """' (repeat_penalty=1.1 …)' where rows of other generation settings of this model stand beside it."""
        return f" ({self.generation_settings or 'settings not recorded'})" if self.settings_shown else ""

    @property
    def label(self) -> str:
        return self.model + self.settings_note

    @property
    def basis(self) -> Basis:
        return Basis(box=self.box, energy_source=self.energy_source, measured=self.measured)


class ScoreTask(BaseModel):
    """A measured benchmark answer that has not been scored yet."""

    id: int
    request_id: str
    category: str
    prompt: str
    answer: str


class Asking(NamedTuple):
    """A user's choices for a new question (see `HistoryStore.asking`); None: not chosen."""

    model: str | None
    units: str | None
    box: str | None
    system_prompt: str | None


@functools.cache
def _asking_query(by_chat: bool) -> Any:
    """`HistoryStore.asking`'s statement, built once (it runs for every chat message). Scalar
    subqueries: exactly one row, whether or not the user or the chat has one."""
    platform, user_id = bindparam("platform", type_=String), bindparam("user", type_=String)
    user = (User.platform == platform, User.platform_user_id == user_id)
    prompt = (
        sa_select(ChatPreference.system_prompt).where(
            ChatPreference.platform == platform, ChatPreference.chat_id == bindparam("chat")
        )
        if by_chat
        else sa_select(User.system_prompt).where(*user)
    )
    chosen = [sa_select(column).where(*user).scalar_subquery() for column in (User.default_model, User.units, User.box)]
    return sa_select(*chosen, prompt.scalar_subquery())


class HintSums(NamedTuple):
    """What the greener-model hint needs of one model's answers in one category, box and meter."""

    answers: int = 0  # with a total energy
    total_j: float = 0.0
    scored: int = 0
    right: int = 0


def by_basis(stats: list[CategoryStats]) -> dict[Basis, list[CategoryStats]]:
    """Rows grouped by what makes them comparable (box, energy source, measured or estimated)."""
    groups: dict[Basis, list[CategoryStats]] = {}
    for row in stats:
        groups.setdefault(row.basis, []).append(row)
    return groups


# Student's t, two-sided 95 %, by degrees of freedom (1.96 beyond the table)
T95 = {
    1: 12.71,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    12: 2.179,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    60: 2.000,
    120: 1.980,
}


def t95(df: int) -> float:
    return next((T95[k] for k in sorted(T95) if k >= df), 1.96)


def spread_ci95(values: list[float]) -> float:
    """Student's t on the spread of `values`: ± of their mean from the scatter alone (0 for one value)."""
    n = len(values)
    return t95(n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0


def own_band(bands: list[float | None]) -> float:
    """The answers' own mean band, shrunk by √n (one answer: its own band); rows from before bands count 0."""
    return statistics.fmean(b or 0.0 for b in bands) / math.sqrt(len(bands)) if bands else 0.0


def mean_ci95(values: list[float], bands: list[float | None]) -> float:
    """± of the mean of `values` at about 95 %: the scatter between answers plus their own bands."""
    return spread_ci95(values) + own_band(bands)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        private_file(Path(url.removeprefix("sqlite:///")))  # 0600; SQLite gives its journals the same mode
        # The worker writes while bots read: wait for the lock instead of failing at once.
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit appends to the log without waiting for the disk.

    Readers (the bots) no longer block the writer (the worker), and a commit costs ~1 ms
    instead of ~2 ms (~20 ms on a busy machine). Durability: an application crash loses
    nothing; a power loss or OS crash can lose the last commits since the previous
    checkpoint (the database itself stays consistent). See README "Configuration".
    """
    cursor = dbapi_connection.cursor()
    try:
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":  # :memory: has no WAL
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration, read from the scripts' own `revision` and `down_revision` lines
    (None unless exactly one is newest: then Alembic decides, and refuses several heads)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*[\"']([^\"']+)[\"']", source, re.MULTILINE)
        parent = re.search(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", source, re.MULTILINE)
        if revision:
            revisions.add(revision[1])
        if parent:
            parents.add(parent[1])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: no schema yet, or it cannot be read)."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), from empty or from any older one.

    A database already at the newest revision is left alone without importing Alembic: a quarter
    of a second at every start of a worker, a bot or `joulebot stats`."""
    if head_revision() is not None and current_revision(engine) == head_revision():
        return
    config = alembic_config()
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        lock_path = Path(f"{engine.url.database}.migrate-lock")
        # SQLite has no advisory locks: a file lock across processes.
        with private_umask(), open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _upgrade(config, engine)
    else:
        _upgrade(config, engine)


def _upgrade(config: Config, engine: Engine) -> None:
    from alembic import command

    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class HistoryUnavailable(RuntimeError):
    """The history database cannot be opened; `str()` is one line, without credentials."""


def open_history(url: str, redact: Callable[[str], str] = lambda text: text) -> HistoryStore:
    """A HistoryStore for a front end: HistoryUnavailable (one line) instead of a driver's traceback."""
    try:
        return HistoryStore.open(url)
    except (DBAPIError, ArgumentError, OSError) as exc:
        text = str(getattr(exc, "orig", None) or exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        where = make_url(url).render_as_string(hide_password=True) if "://" in url else url
        raise HistoryUnavailable(redact(f"the history database {where} cannot be opened: {reason}")) from None


class HistoryStore:
    """Queries over one database. `HistoryStore.open(url)` also brings its schema up to date."""

    # The greener-model hint runs after every answer. Its per-category sums are read from the
    # rollup (a few rows) at most this often and kept up to date by this store's own writes in
    # between, which saves a round trip on the answer's path; other processes' writes (another
    # box on the same database) count from the next read.
    HINT_REFRESH_S = 60.0

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        # (category, box, source) → when read, and the sums per (model, generation settings)
        self._hint_sums: dict[tuple[str, str, str], tuple[float, dict[tuple[str, str], HintSums]]] = {}
        self._user_ids: dict[tuple[str, str], int] = {}  # (platform, platform user id) → users.id

    @classmethod
    def open(cls, url: str) -> HistoryStore:
        """A store whose schema is at the newest revision (migrated first if needed)."""
        store = cls(url)
        migrate(store.engine)
        return store

    def _prefixed(self, column: Any, prefix: str) -> ColumnElement[bool]:
        return _starting_with(self.engine.dialect.name, column, prefix)

    def _user(self, session: Session, platform: str, platform_user_id: str) -> User:
        query = select(User).where(User.platform == platform, User.platform_user_id == platform_user_id)
        user = session.exec(query).first()
        if user is None:
            user = User(platform=platform, platform_user_id=platform_user_id)
            session.add(user)
            try:
                session.commit()
            except IntegrityError:  # created meanwhile by another process
                session.rollback()
                user = session.exec(query).one()
            session.refresh(user)
        return user

    def _user_id(self, connection: Connection, platform: str, platform_user_id: str) -> int:
        """The user's row id, made if new, in the caller's transaction (Core: an ORM session costs
        ~3 ms here, on the answer's path for every new user). The caller keeps it in `_user_ids`
        once its transaction committed: a user row is never deleted (forgetting clears its
        preferences, not the row), so the id of a (platform, user) never changes."""
        known = self._user_ids.get((platform, platform_user_id))
        if known is not None:
            return known
        users = User.__table__
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        new = {"platform": platform, "platform_user_id": platform_user_id, "created_at": now()}
        # made meanwhile by another process (a bot, another box): that row is the user's
        connection.execute(dialect.insert(users).values(new).on_conflict_do_nothing())
        found = users.c.platform == platform, users.c.platform_user_id == platform_user_id
        return connection.execute(sa_select(users.c.id).where(*found)).scalar_one()

    def record(self, result: Result) -> int:
        """Store one finished exchange; returns its id. The Result's own id fields stay unset.

        The earlier turns a request carried are not stored again with it: each lives in its own
        exchange (found through `parent_id`), so forgetting or retention removes every copy.
        """
        req, energy, carbon = result.request, result.energy, result.carbon
        # the samples go in their own column, once; the earlier turns in their own exchanges
        stored = result.model_dump(mode="json", exclude={"energy": {"machine": {"trace"}}, "request": {"turns"}})
        # One Core transaction: on the answer's path, an ORM session, the SQLModel object and its unit
        # of work (flush, then reloading the row for its id) cost more CPU than the write itself.
        with self.engine.begin() as connection:
            user_id = self._user_id(connection, req.platform, req.user_id)
            row = dict(
                request_id=req.id,
                user_id=user_id,
                platform=req.platform,
                model=result.model,
                category=result.category,
                prompt=req.prompt,
                answer=result.answer,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                started_at=result.started_at,
                seconds=energy.seconds,
                load_s=result.load_s,
                energy_total_j=energy.total_j,
                energy_attributable_j=energy.attributable_j,
                idle_w=energy.idle.watts if energy.idle else None,
                energy_source=energy.machine.source,
                energy_measured=energy.measured,
                energy_uncertainty_j=energy.uncertainty_j,
                energy_attributable_uncertainty_j=energy.attributable_uncertainty_j,
                energy_scope=energy.machine.scope,
                energy_includes_reload=energy.includes_reload,
                intensity_g_per_kwh=carbon.intensity.g_per_kwh,
                intensity_zone=carbon.intensity.zone,
                intensity_provenance=carbon.intensity.provenance,
                operational_g=carbon.operational_g,
                embodied_g=carbon.embodied_g,
                sci_g=carbon.sci_g,
                box=result.box,
                result=stored,
                power_trace=[list(point) for point in energy.machine.trace] or None,
                share_token=result.share_token,
                meter_failures=sum(r.joules is None for r in (energy.machine, *energy.components)),
                conversation_id=req.conversation_id,
                parent_id=req.parent_id,
                turn=req.turn,
                context_turns=result.context_turns,
                chat_id=req.chat_id,
                message_ref=req.message_ref,
                system_prompt=req.system,
                generation_settings=result.generation_settings,
                created_at=now(),
            )
            exchange_id: int = connection.execute(insert(Exchange.__table__), row).inserted_primary_key[0]
            if req.message_ref is not None and req.chat_id is not None:  # replies to it continue from here
                shown = {"platform": req.platform, "chat_id": req.chat_id, "message_ref": req.message_ref}
                connection.execute(insert(ExchangeMessage.__table__), {**shown, "exchange_id": exchange_id})
            rollup.add_one(connection, exchange_id)  # the statistics' sums
        self._user_ids[(req.platform, req.user_id)] = user_id  # committed: known from now on
        kept = self._hint_sums.get((result.category, result.box, energy.machine.source))
        if (
            kept is not None and energy.total_j is not None and not energy.includes_reload
        ):  # an answer is scored later: set_score forgets
            key = (result.model, result.generation_settings)
            sums = kept[1].get(key, HintSums())
            kept[1][key] = sums._replace(answers=sums.answers + 1, total_j=sums.total_j + energy.total_j)
        return exchange_id

    def recent(self, platform: str, platform_user_id: str, limit: int = 10, offset: int = 0) -> list[Exchange]:
        """A user's own exchanges, newest first, one page of `limit` after skipping `offset`."""
        with Session(self.engine) as session:
            query = (
                select(Exchange)
                .join(User)
                .where(User.platform == platform, User.platform_user_id == platform_user_id)
                .order_by(Exchange.id.desc())  # type: ignore[union-attr]
                .offset(offset)
                .limit(limit)
            )
            return list(session.exec(query).all())

    def asking(self, platform: str, platform_user_id: str, chat_id: str | None = None) -> Asking:
        """What a new question of this user needs, in one read (once per chat message): their default
        model, units and pinned box, and the system prompt — the chat's when `chat_id` is given (groups),
        else their own. None where nothing was chosen; no user row is made."""
        values = {"platform": platform, "user": platform_user_id, "chat": chat_id}
        with self.engine.connect() as connection:  # Core, not an ORM session
            return Asking(*connection.execute(_asking_query(chat_id is not None), values).one())

    def preferences(self, platform: str, platform_user_id: str) -> tuple[str | None, str | None, str | None]:
        """(default model, units, pinned box) the user chose, None where they did not."""
        return self.asking(platform, platform_user_id)[:3]

    def set_preferences(
        self,
        platform: str,
        platform_user_id: str,
        *,
        model: str | None = None,
        units: str | None = None,
        box: str | None = None,
    ) -> None:
        """Set what is given; `box=""` unpins (routing decides again)."""
        with Session(self.engine) as session:
            user = self._user(session, platform, platform_user_id)
            if model is not None:
                user.default_model = model
            if units is not None:
                user.units = units
            if box is not None:
                user.box = box or None
            session.add(user)
            session.commit()

    def system_prompt(self, platform: str, platform_user_id: str, chat_id: str | None = None) -> str | None:
        """The chat's system prompt when `chat_id` is given (groups), else the user's; None if unset."""
        return self.asking(platform, platform_user_id, chat_id).system_prompt

    def set_system_prompt(
        self, platform: str, platform_user_id: str, text: str | None, chat_id: str | None = None
    ) -> None:
        """Set (or with None, clear) the user's system prompt, or the group chat's when `chat_id` is given."""
        with Session(self.engine) as session:
            if chat_id is None:
                row: User | ChatPreference = self._user(session, platform, platform_user_id)
            else:
                query = select(ChatPreference).where(
                    ChatPreference.platform == platform, ChatPreference.chat_id == chat_id
                )
                row = session.exec(query).first() or ChatPreference(platform=platform, chat_id=chat_id)
            row.system_prompt = text
            session.add(row)
            session.commit()

    def answer_at(self, platform: str, chat_id: str, message_ref: str) -> Exchange | None:
        """The exchange whose answer (or a piece of it) a platform message of this chat shows: replies
        continue from it."""
        with Session(self.engine) as session:
            query = (
                select(Exchange)
                .join(ExchangeMessage, ExchangeMessage.exchange_id == Exchange.id)  # type: ignore[arg-type]
                .where(
                    ExchangeMessage.platform == platform,
                    ExchangeMessage.chat_id == chat_id,
                    ExchangeMessage.message_ref == message_ref,
                    Exchange.chat_id == chat_id,  # a forgotten exchange has no chat any more
                )
            )
            return session.exec(query.order_by(Exchange.id.desc())).first()  # type: ignore[union-attr]

    def add_messages(self, platform: str, chat_id: str, exchange_id: int, message_refs: list[str]) -> None:
        """More platform messages that show this exchange's answer (the pieces of a long one); idempotent."""
        with Session(self.engine) as session:
            known = set(
                session.exec(
                    select(ExchangeMessage.message_ref).where(
                        ExchangeMessage.exchange_id == exchange_id, ExchangeMessage.chat_id == chat_id
                    )
                ).all()
            )
            for ref in dict.fromkeys(message_refs):  # in order, once each
                if ref not in known:
                    session.add(
                        ExchangeMessage(platform=platform, chat_id=chat_id, message_ref=ref, exchange_id=exchange_id)
                    )
            session.commit()

    def owner(self, exchange: Exchange) -> str | None:
        """The platform user id who asked an exchange (None once forgotten)."""
        if exchange.user_id is None:
            return None
        with Session(self.engine) as session:
            user = session.get(User, exchange.user_id)
            return user.platform_user_id if user else None

    def thread(self, exchange_id: int, max_turns: int = 200) -> list[Exchange]:
        """An exchange and the ones it continued, oldest first; stops where words were forgotten."""
        chain: list[Exchange] = []
        with Session(self.engine) as session:
            current = session.get(Exchange, exchange_id)
            while current is not None and current.prompt and len(chain) < max_turns:
                chain.append(current)
                current = session.get(Exchange, current.parent_id) if current.parent_id is not None else None
        return chain[::-1]

    def forget(self, platform: str, platform_user_id: str) -> int:
        """Delete a user's prompts and answers; their anonymous measurements stay for the statistics.

        Returns how many exchanges were scrubbed.
        """
        with Session(self.engine) as session:
            query = select(User).where(User.platform == platform, User.platform_user_id == platform_user_id)
            user = session.exec(query).first()
            if user is None:  # nobody by that id: nothing to forget, and no row made for them
                return 0
            theirs = select(Exchange.id).where(Exchange.user_id == user.id)
            session.exec(delete(ExchangeMessage).where(ExchangeMessage.exchange_id.in_(theirs)))
            rows = session.exec(select(Exchange).where(Exchange.user_id == user.id)).all()
            for row in rows:
                _scrub(row)
                row.user_id = None
                session.add(row)
            user.default_model = user.units = user.box = user.system_prompt = None
            session.add(user)
            session.commit()
            return len(rows)

    def model_stats(self) -> list[CategoryStats]:
        """Per model and basis (box, energy source, measured or estimated), all categories together
        (`category` is empty): never averaged across bases."""
        return sorted(self._aggregate(None, by_category=False), key=lambda s: s.mean_total_j)

    def category_stats(
        self, request_id_prefix: str | None = None, box: str | None = None, continued: bool = False
    ) -> list[CategoryStats]:
        """Per model, task category, box and meter, over every first question with a total energy (or one run's,

        Figures from different boxes or meters are never averaged together: each pair is its own row.
        One aggregate over the running sums of `stats_rollup` (a few hundred rows however long the
        history); one benchmark run's (`request_id_prefix`) straight from its own rows, found through
        the request id's index. `continued=True`: over the later turns of conversations instead (they
        carry context, cost more).
        """
        stats = self._aggregate(request_id_prefix, by_category=True, box=box, continued=continued)
        return sorted(stats, key=lambda s: (s.model, s.category, s.box, s.energy_source, not s.measured))

    def _aggregate(
        self,
        request_id_prefix: str | None,
        by_category: bool,
        box: str | None = None,
        continued: bool = False,
        from_rows: bool = False,
    ) -> list[CategoryStats]:
        """`from_rows`: the same sums from the exchanges instead of the rollup (what the rollup must equal)."""
        match: dict[str, Any] = {"turn_kind": rollup.LATER if continued else rollup.FIRST}
        match["energy_includes_reload"] = False  # a reload inside the window is not comparable
        if box is not None:
            match["box"] = box
        group = [*(["category"] if by_category else []), "box", "energy_source", "model", "energy_measured"]
        group.append("generation_settings")  # answers made with other settings are never pooled
        with self.engine.connect() as connection:
            source: FromClause = rollup.STATS_ROLLUP
            if request_id_prefix or from_rows:
                where = self._prefixed(rollup.X.request_id, request_id_prefix or "")
                source = rollup.direct(where).subquery()
            rows = connection.execute(rollup.totals(group, match, source)).all()
        return _told_apart([_category_stats(rollup.as_numbers(row), by_category) for row in rows])

    def greener_hint(
        self,
        category: str,
        model: str,
        candidates: list[str],
        box: str,
        source: str,
        min_scored: int = 5,
        settings: Mapping[str, str] | None = None,
    ) -> str | None:
        """'as accurate on translation here (80 % vs 70 % right), tinyllama: 4× less energy than mistral'.

        Only from this box and meter, only for a model whose measured accuracy on the task is
        not worse than this one's within the intervals (its 95 % Wilson interval reaches this
        model's share correct), and only when it used at least 2× less energy on average.
        Without scores for both models there is no hint: cheaper is no use if it is wrong. Each model's
        answers count only with its generation settings now (`settings`, by model; '' where not given).
        """
        sums = self._hint_sums_for(category, box, source)
        now_made = {(m, (settings or {}).get(m, "")) for m in [model, *candidates]}
        found = {
            m: (s.total_j / s.answers, s.scored, s.right)
            for (m, tag), s in sums.items()
            if s.scored >= min_scored and (m, tag) in now_made
        }
        if model not in found:
            return None
        mean_j, n, right = found[model]
        share = right / n
        good = {
            m: found[m]
            for m in candidates
            if m in found and m != model and wilson(found[m][2], found[m][1])[1] >= share and found[m][0] > 0
        }
        if not good:
            return None
        best = min(good, key=lambda m: good[m][0])
        ratio = mean_j / good[best][0]
        if ratio < 2:
            return None
        other_share = good[best][2] / good[best][1]
        estimated = " (estimates, not measurements)" if source == "estimate" else ""
        return (
            f"as accurate on {category} here ({other_share:.0%} vs {share:.0%} right), "
            f"{best} used {ratio:.0f}× less energy than {model}{estimated}"
        )

    def _hint_sums_for(self, category: str, box: str, source: str) -> dict[tuple[str, str], HintSums]:
        """Per model and generation settings, for one category on one box and meter (see HINT_REFRESH_S)."""
        key = (category, box, source)
        read_at, sums = self._hint_sums.get(key, (float("-inf"), {}))
        if time.monotonic() - read_at > self.HINT_REFRESH_S:
            match = {"turn_kind": rollup.FIRST, "category": category, "box": box, "energy_source": source}
            query = rollup.totals(["model", "generation_settings"], {**match, "energy_includes_reload": False})
            with self.engine.connect() as connection:  # Core, not an ORM session
                rows = [rollup.as_numbers(row) for row in connection.execute(query)]
            sums = {
                (r["model"], r["generation_settings"]): HintSums(r["answers"], r["total_j"], r["scored"], r["correct"])
                for r in rows
            }
            self._hint_sums[key] = (time.monotonic(), sums)
        return sums

    def to_score(self, request_id_prefix: str) -> list[ScoreTask]:
        """The measured exchanges of a benchmark run that have no score yet, in order."""
        query = (
            select(Exchange.id, Exchange.request_id, Exchange.category, Exchange.prompt, Exchange.answer)
            .where(self._prefixed(Exchange.request_id, request_id_prefix), Exchange.score_note.is_(None))  # type: ignore[union-attr]
            .order_by(Exchange.id)  # type: ignore[arg-type]
        )
        with Session(self.engine) as session:
            rows = session.exec(query).all()
        return [ScoreTask(id=i, request_id=r, category=c, prompt=p, answer=a) for i, r, c, p, a in rows]

    def clear_scores(self, request_id_prefix: str) -> int:
        """Forget the scores of a benchmark run (to check it again with changed references)."""
        with self.engine.begin() as connection:
            where = self._prefixed(rollup.X.request_id, request_id_prefix)
            changed = self._rescore(connection, where, {"correct": None, "score": None, "score_note": None})
        self._hint_sums.clear()  # the hint's sums count scores
        return changed

    def set_score(self, exchange_id: int, correct: bool | None, score: float | None, note: str) -> None:
        with self.engine.begin() as connection:
            self._rescore(
                connection, rollup.X.id == exchange_id, {"correct": correct, "score": score, "score_note": note[:200]}
            )
        self._hint_sums.clear()  # the hint's sums count scores

    @staticmethod
    def _rescore(connection: Connection, where: ColumnElement[bool], values: dict[str, Any]) -> int:
        """Set the scores of the exchanges matching `where`, their old ones out of the rollup and the new in.

        Three statements in one transaction. On PostgreSQL the rows are locked first, so that two
        processes scoring the same answer at once each take out what the other put in.
        """
        if connection.dialect.name == "postgresql":
            connection.execute(sa_select(rollup.X.id).where(where).with_for_update())
        rollup.add(connection, where, rollup.SCORES, sign=-1)
        changed = connection.execute(update(rollup.EXCHANGES).where(where).values(**values)).rowcount
        rollup.add(connection, where, rollup.SCORES)
        return changed

    def answer_rows(self, request_id_prefix: str) -> list[dict]:
        """One benchmark run, one row per answer (for its CSV), with its score."""
        keep = (
            "request_id",
            "model",
            "category",
            "box",
            "energy_source",
            "energy_measured",
            "energy_total_j",
            "energy_attributable_j",
            "sci_g",
            "completion_tokens",
            "seconds",
            "correct",
            "score",
            "score_note",
        )
        query = select(Exchange).where(self._prefixed(Exchange.request_id, request_id_prefix)).order_by(Exchange.id)  # type: ignore[arg-type]
        with Session(self.engine) as session:
            return [{c: getattr(row, c) for c in keep} for row in session.exec(query).all()]

    def box_means(self, box: str) -> list[dict]:
        """One box's mean total energy and answer time per model and task (what routing expects): every
        answer with a total energy, later turns and reloads included."""
        with self.engine.connect() as connection:
            rows = [
                rollup.as_numbers(r) for r in connection.execute(rollup.totals(["model", "category"], {"box": box}))
            ]
        return [
            {
                "model": r["model"],
                "category": r["category"],
                "answers": r["answers"],
                "mean_total_j": r["total_j"] / r["answers"],
                "mean_seconds": r["seconds"] / r["answers"],
            }
            for r in rows
        ]

    def boxes(self) -> list[str]:
        """Every box that has answers in history."""
        with Session(self.engine) as session:
            return sorted(session.exec(select(Exchange.box).distinct()).all())

    def request_ids(self, prefix: str) -> set[str]:
        with Session(self.engine) as session:
            query = select(Exchange.request_id).where(self._prefixed(Exchange.request_id, prefix))
            return set(session.exec(query).all())

    def export(self, platform: str, platform_user_id: str) -> list[dict]:
        """A user's own exchanges as flat rows (for CSV), oldest first."""
        rows = reversed(self.recent(platform, platform_user_id, limit=1_000_000))
        keep = [c for c in Exchange.model_fields if c not in ("result", "user_id", "power_trace")]
        return [{c: getattr(row, c) for c in keep} for row in rows]

    def scrub_older_than(self, days: float) -> int:
        """Retention: prompts and answers older than `days` are deleted (and which messages showed them);
        the measurements stay."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with Session(self.engine) as session:
            expired = select(Exchange.id).where(Exchange.started_at < cutoff)
            session.exec(delete(ExchangeMessage).where(ExchangeMessage.exchange_id.in_(expired)))
            rows = session.exec(select(Exchange).where(Exchange.started_at < cutoff, Exchange.prompt != "")).all()
            for row in rows:
                _scrub(row)
                session.add(row)
            session.commit()
            return len(rows)

    def get(self, exchange_id: int) -> Exchange | None:
        with Session(self.engine) as session:
            return session.get(Exchange, exchange_id)


def _scrub(row: Exchange) -> None:
    """Remove the words of an exchange (prompt, answer, reasoning, who asked); keep its figures."""
    result = dict(row.result)
    request = dict(result.get("request", {}))
    request.update(prompt="", user_id="", chat_id=None, system=None, turns=[])
    result.update(request=request, answer="", reasoning="", hint=None)
    row.prompt, row.answer, row.result = "", "", result
    row.system_prompt = row.chat_id = None


def _category_stats(sums: dict[str, Any], by_category: bool = True) -> CategoryStats:
    """One row of the statistics from its rollup sums (see rollup.FIGURES)."""
    n, energy, n_sci, scored = sums["answers"], sums["total_j"], sums["sci_n"], sums["scored"]
    correct = sums["correct"]
    mean = energy / n
    co2e = sums["operational_g"] / sums["operational_n"] if sums["operational_n"] else None
    sci = sums["sci_g"] / n_sci if n_sci else None
    low, high = wilson(correct, scored) if scored else (None, None)
    stdev = sample_stdev(n, energy, sums["total_j_squares"])
    own = sums["band_j"] / n / math.sqrt(n)  # the answers' own mean band, shrunk by √n
    ci_sci = None
    if sci is not None and co2e is not None and mean > 0:
        sci_stdev = sample_stdev(n_sci, sums["sci_g"], sums["sci_g_squares"])
        ci_sci = (t95(n_sci - 1) * sci_stdev / math.sqrt(n_sci) if n_sci > 1 else 0.0) + own * co2e / mean
    return CategoryStats(
        model=sums["model"],
        category=sums["category"] if by_category else "",
        box=sums["box"],
        energy_source=sums["energy_source"],
        measured=bool(sums["energy_measured"]),
        generation_settings=sums["generation_settings"],
        ci95_total_j=(t95(n - 1) * stdev / math.sqrt(n) if n > 1 else 0.0) + own,
        ci95_sci_g=ci_sci,
        scored=scored,
        correct=correct,
        accuracy=correct / scored if scored else None,
        accuracy_low=low,
        accuracy_high=high,
        j_per_correct=sums["scored_total_j"] / correct if correct else None,
        sci_per_correct_g=sums["scored_sci_g"] / correct if correct and sums["scored_sci_n"] == scored else None,
        answers=n,
        mean_total_j=mean,
        mean_attributable_j=sums["attributable_j"] / sums["attributable_n"] if sums["attributable_n"] else None,
        mean_co2e_g=co2e,
        mean_sci_g=sci,
        j_per_token=energy / sums["completion_tokens"] if sums["completion_tokens"] else None,
        stdev_total_j=stdev,
    )


def _told_apart(stats: list[CategoryStats]) -> list[CategoryStats]:
    """Where one model has rows of several generation settings side by side (same task and basis),
    each row's label names its settings: they are other answers, never one mean."""
    seen: dict[tuple[str, str, Basis], int] = {}
    for row in stats:
        key = (row.model, row.category, row.basis)
        seen[key] = seen.get(key, 0) + 1
    return [row.model_copy(update={"settings_shown": seen[(row.model, row.category, row.basis)] > 1}) for row in stats]


def _starting_with(dialect: str, column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix` (case-sensitive), in a form each database answers from its index.

    SQLite uses an index for a range, not for LIKE (which it compares case-insensitively): the
    range holds exactly the strings starting with `prefix` in its binary order. PostgreSQL uses
    the request id's pattern index (migration 0021) for LIKE whatever the database's collation.
    """
    if not prefix:
        return sa_true()
    if dialect != "sqlite":
        return column.startswith(prefix, autoescape=True)
    last = ord(prefix[-1]) + 1
    last += 0x800 if 0xD800 <= last <= 0xDFFF else 0  # past the surrogates, which UTF-8 cannot hold
    if last > 0x10FFFF:
        return column >= prefix
    return and_(column >= prefix, column < prefix[:-1] + chr(last))


def sample_stdev(n: int, total: float, squares: float) -> float:
    """Sample standard deviation from a count, a sum and a sum of squares (what SQL can aggregate).

    Both databases sum in double precision; the difference is clamped at 0 where rounding makes
    a constant series come out a hair negative. 0 for a single answer.
    """
    if n < 2:
        return 0.0
    return math.sqrt(max(0.0, (squares - total * total / n) / (n - 1)))
