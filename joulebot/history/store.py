"""Reading and writing history. One HistoryStore per process; it owns the engine."""

from __future__ import annotations

import fcntl
import functools
import math
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, case, delete, event, func, insert, make_url, text
from sqlalchemy import literal as sa_literal
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlmodel import Session, create_engine, select

from joulebot.config.files import private_file, private_umask
from joulebot.exchange import Result
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
    def basis(self) -> Basis:
        return Basis(box=self.box, energy_source=self.energy_source, measured=self.measured)


class ScoreTask(BaseModel):
    """A measured benchmark answer that has not been scored yet."""

    id: int
    request_id: str
    category: str
    prompt: str
    answer: str


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

    # The greener-model hint runs after every answer. Its per-category sums are read with one
    # aggregate at most this often and kept up to date by this store's own writes in between, so
    # the hint costs the same at 100k exchanges as at none; other processes' writes (another box
    # on the same database) count from the next read.
    HINT_REFRESH_S = 60.0

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._hint_sums: dict[tuple[str, str, str], tuple[float, dict[str, HintSums]]] = {}  # (category, box, source)
        self._user_ids: dict[tuple[str, str], int] = {}  # (platform, platform user id) → users.id

    @classmethod
    def open(cls, url: str) -> HistoryStore:
        """A store whose schema is at the newest revision (migrated first if needed)."""
        store = cls(url)
        migrate(store.engine)
        return store

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

    def _user_id(self, session: Session, platform: str, platform_user_id: str) -> int:
        """The user's row id (made if new). Kept once known: a user row is never deleted (forgetting
        clears its preferences, not the row), so the id of a (platform, user) never changes."""
        known = self._user_ids.get((platform, platform_user_id))
        if known is not None:
            return known
        query = select(User.id).where(User.platform == platform, User.platform_user_id == platform_user_id)
        found = session.exec(query).first()
        user_id: int = found if found is not None else self._user(session, platform, platform_user_id).id  # type: ignore[assignment]
        self._user_ids[(platform, platform_user_id)] = user_id
        return user_id

    def record(self, result: Result) -> int:
        """Store one finished exchange; returns its id. The Result's own id fields stay unset.

        The earlier turns a request carried are not stored again with it: each lives in its own
        exchange (found through `parent_id`), so forgetting or retention removes every copy.
        """
        req, energy, carbon = result.request, result.energy, result.carbon
        # the samples go in their own column, once; the earlier turns in their own exchanges
        stored = result.model_dump(mode="json", exclude={"energy": {"machine": {"trace"}}, "request": {"turns"}})
        with Session(self.engine) as session:
            # The row's columns as a plain dict for a Core insert: on the answer's path, building the
            # SQLModel object and the ORM's unit of work (flush, then reloading the row for its id)
            # cost more CPU than the write itself.
            row = dict(
                request_id=req.id,
                user_id=self._user_id(session, req.platform, req.user_id),
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
                created_at=now(),
            )
            inserted = session.connection().execute(insert(Exchange.__table__), row)
            if req.message_ref is not None and req.chat_id is not None:  # replies to it continue from here
                shown = {"platform": req.platform, "chat_id": req.chat_id, "message_ref": req.message_ref}
                session.connection().execute(
                    insert(ExchangeMessage.__table__), {**shown, "exchange_id": inserted.inserted_primary_key[0]}
                )
            session.commit()
        kept = self._hint_sums.get((result.category, result.box, energy.machine.source))
        if (
            kept is not None and energy.total_j is not None and not energy.includes_reload
        ):  # an answer is scored later: set_score forgets
            sums = kept[1].get(result.model, HintSums())
            kept[1][result.model] = sums._replace(answers=sums.answers + 1, total_j=sums.total_j + energy.total_j)
        return inserted.inserted_primary_key[0]

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

    def preferences(self, platform: str, platform_user_id: str) -> tuple[str | None, str | None, str | None]:
        """(default model, units, pinned box) the user chose, None where they did not. A read only: no user
        row is made."""
        query = select(User.default_model, User.units, User.box).where(
            User.platform == platform, User.platform_user_id == platform_user_id
        )
        with self.engine.connect() as connection:  # Core, not an ORM session: read once per chat message
            row = connection.execute(query).first()
        return (row[0], row[1], row[2]) if row else (None, None, None)

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
        with Session(self.engine) as session:
            if chat_id is not None:
                query = select(ChatPreference.system_prompt).where(
                    ChatPreference.platform == platform, ChatPreference.chat_id == chat_id
                )
            else:
                query = select(User.system_prompt).where(
                    User.platform == platform, User.platform_user_id == platform_user_id
                )
            return session.exec(query).first()

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
        One aggregate query (served by the covering index `ix_exchanges_stats`): the database
        returns counts, means and the sums for the spread and the scores; no row is loaded here.
        `continued=True`: over the later turns of conversations instead (they carry context, cost more).
        """
        stats = self._aggregate(request_id_prefix, by_category=True, box=box, continued=continued)
        return sorted(stats, key=lambda s: (s.model, s.category, s.box, s.energy_source, not s.measured))

    def _aggregate(
        self, request_id_prefix: str | None, by_category: bool, box: str | None = None, continued: bool = False
    ) -> list[CategoryStats]:
        total, sci = Exchange.energy_total_j, Exchange.sci_g
        category = Exchange.category if by_category else sa_literal("")
        scored = Exchange.correct.is_not(None)  # type: ignore[union-attr]
        query = (
            select(
                Exchange.model,
                category,
                Exchange.box,
                Exchange.energy_source,
                Exchange.energy_measured,
                func.count(),
                func.avg(total),
                func.avg(Exchange.energy_attributable_j),
                func.avg(Exchange.operational_g),
                func.avg(sci),
                func.sum(total),
                func.sum(total * total),
                func.sum(Exchange.completion_tokens),
                func.count(Exchange.correct),
                func.sum(case((Exchange.correct.is_(True), 1), else_=0)),  # type: ignore[union-attr]
                func.sum(case((scored, total))),
                func.sum(case((scored, sci))),
                func.count(case((scored, sci))),
                func.avg(func.coalesce(Exchange.energy_uncertainty_j, 0.0)),  # rows from before bands: 0
                func.count(sci),
                func.sum(sci),
                func.sum(sci * sci),
            )
            .where(total.is_not(None), Exchange.energy_includes_reload.is_(False))  # type: ignore[union-attr,attr-defined]
            .where(Exchange.turn > 1 if continued else Exchange.turn == 1)  # first questions apart from later turns
            .group_by(  # the index's order; a reload inside a window is not comparable
                *([Exchange.category] if by_category else []),
                Exchange.box,
                Exchange.energy_source,
                Exchange.model,
                Exchange.energy_measured,
            )
        )
        if request_id_prefix:
            query = query.where(Exchange.request_id.startswith(request_id_prefix))  # type: ignore[attr-defined]
        if box is not None:
            query = query.where(Exchange.box == box)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_category_stats(*row) for row in rows]

    def greener_hint(
        self, category: str, model: str, candidates: list[str], box: str, source: str, min_scored: int = 5
    ) -> str | None:
        """'as accurate on translation here (80 % vs 70 % right), tinyllama: 4× less energy than mistral'.

        Only from this box and meter, only for a model whose measured accuracy on the task is
        not worse than this one's within the intervals (its 95 % Wilson interval reaches this
        model's share correct), and only when it used at least 2× less energy on average.
        Without scores for both models there is no hint: cheaper is no use if it is wrong.
        """
        sums = self._hint_sums_for(category, box, source)
        found = {m: (s.total_j / s.answers, s.scored, s.right) for m, s in sums.items() if s.scored >= min_scored}
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

    def _hint_sums_for(self, category: str, box: str, source: str) -> dict[str, HintSums]:
        """Per model, for one category on one box and meter (see HINT_REFRESH_S)."""
        key = (category, box, source)
        read_at, sums = self._hint_sums.get(key, (float("-inf"), {}))
        if time.monotonic() - read_at > self.HINT_REFRESH_S:
            total = Exchange.energy_total_j
            query = (  # one aggregate, an index-only range scan of `ix_exchanges_stats`
                select(
                    Exchange.model,
                    func.count(total),
                    func.sum(total),
                    func.count(Exchange.correct),
                    func.sum(case((Exchange.correct.is_(True), 1), else_=0)),  # type: ignore[union-attr]
                )
                .where(
                    Exchange.turn == 1,
                    Exchange.category == category,
                    Exchange.box == box,
                    Exchange.energy_source == source,
                )
                .where(total.is_not(None), Exchange.energy_includes_reload.is_(False))  # type: ignore[union-attr,attr-defined]
                .group_by(Exchange.model)
            )
            with self.engine.connect() as connection:  # Core, not an ORM session
                rows = connection.execute(query).all()
            sums = {m: HintSums(int(n), float(t), int(k), int(r or 0)) for m, n, t, k, r in rows}
            self._hint_sums[key] = (time.monotonic(), sums)
        return sums

    def to_score(self, request_id_prefix: str) -> list[ScoreTask]:
        """The measured exchanges of a benchmark run that have no score yet, in order."""
        query = (
            select(Exchange.id, Exchange.request_id, Exchange.category, Exchange.prompt, Exchange.answer)
            .where(Exchange.request_id.startswith(request_id_prefix), Exchange.score_note.is_(None))  # type: ignore[attr-defined,union-attr]
            .order_by(Exchange.id)  # type: ignore[arg-type]
        )
        with Session(self.engine) as session:
            rows = session.exec(query).all()
        return [ScoreTask(id=i, request_id=r, category=c, prompt=p, answer=a) for i, r, c, p, a in rows]

    def clear_scores(self, request_id_prefix: str) -> int:
        """Forget the scores of a benchmark run (to check it again with changed references)."""
        with Session(self.engine) as session:
            rows = session.exec(select(Exchange).where(Exchange.request_id.startswith(request_id_prefix))).all()  # type: ignore[attr-defined]
            for row in rows:
                row.correct = row.score = row.score_note = None
                session.add(row)
            session.commit()
        self._hint_sums.clear()  # the hint's sums count scores
        return len(rows)

    def set_score(self, exchange_id: int, correct: bool | None, score: float | None, note: str) -> None:
        with Session(self.engine) as session:
            row = session.get(Exchange, exchange_id)
            if row is None:
                return
            row.correct, row.score, row.score_note = correct, score, note[:200]
            session.add(row)
            session.commit()
        self._hint_sums.clear()  # the hint's sums count scores

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
        query = select(Exchange).where(Exchange.request_id.startswith(request_id_prefix)).order_by(Exchange.id)  # type: ignore[attr-defined,arg-type]
        with Session(self.engine) as session:
            return [{c: getattr(row, c) for c in keep} for row in session.exec(query).all()]

    def box_means(self, box: str) -> list[dict]:
        """One box's mean total energy and answer time per model and task (what routing expects)."""
        query = (
            select(
                Exchange.model,
                Exchange.category,
                func.count(),
                func.avg(Exchange.energy_total_j),
                func.avg(Exchange.seconds),
            )
            .where(Exchange.box == box, Exchange.energy_total_j.is_not(None))  # type: ignore[union-attr]
            .group_by(Exchange.model, Exchange.category)
        )
        with Session(self.engine) as session:
            rows = session.exec(query).all()
        return [
            {"model": m, "category": c, "answers": n, "mean_total_j": j, "mean_seconds": s} for m, c, n, j, s in rows
        ]

    def boxes(self) -> list[str]:
        """Every box that has answers in history."""
        with Session(self.engine) as session:
            return sorted(session.exec(select(Exchange.box).distinct()).all())

    def request_ids(self, prefix: str) -> set[str]:
        with Session(self.engine) as session:
            query = select(Exchange.request_id).where(Exchange.request_id.startswith(prefix))  # type: ignore[attr-defined]
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


def _category_stats(
    model: str,
    category: str,
    box: str,
    source: str,
    measured: bool,
    n: int,
    mean: float,
    attributable: float | None,
    co2e: float | None,
    sci: float | None,
    energy: float,
    squares: float,
    tokens: int | None,
    scored: int,
    correct: int | None,
    scored_j: float | None,
    scored_sci: float | None,
    scored_with_sci: int,
    mean_band: float | None,
    n_sci: int,
    sci_sum: float | None,
    sci_squares: float | None,
) -> CategoryStats:
    correct = int(correct or 0)
    low, high = wilson(correct, scored) if scored else (None, None)
    stdev = sample_stdev(n, energy, squares)
    own = (mean_band or 0.0) / math.sqrt(n)
    ci_sci = None
    if sci is not None and co2e is not None and mean > 0:
        sci_stdev = sample_stdev(n_sci, sci_sum or 0.0, sci_squares or 0.0)
        ci_sci = (t95(n_sci - 1) * sci_stdev / math.sqrt(n_sci) if n_sci > 1 else 0.0) + own * co2e / mean
    return CategoryStats(
        model=model,
        category=category,
        box=box,
        energy_source=source,
        measured=bool(measured),
        ci95_total_j=(t95(n - 1) * stdev / math.sqrt(n) if n > 1 else 0.0) + own,
        ci95_sci_g=ci_sci,
        scored=scored,
        correct=correct,
        accuracy=correct / scored if scored else None,
        accuracy_low=low,
        accuracy_high=high,
        j_per_correct=scored_j / correct if correct and scored_j is not None else None,
        sci_per_correct_g=scored_sci / correct if correct and scored_with_sci == scored else None,
        answers=n,
        mean_total_j=mean,
        mean_attributable_j=attributable,
        mean_co2e_g=co2e,
        mean_sci_g=sci,
        j_per_token=energy / tokens if tokens else None,
        stdev_total_j=stdev,
    )


def sample_stdev(n: int, total: float, squares: float) -> float:
    """Sample standard deviation from a count, a sum and a sum of squares (what SQL can aggregate).

    Both databases sum in double precision; the difference is clamped at 0 where rounding makes
    a constant series come out a hair negative. 0 for a single answer.
    """
    if n < 2:
        return 0.0
    return math.sqrt(max(0.0, (squares - total * total / n) / (n - 1)))
