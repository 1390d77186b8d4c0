"""Reading and writing history. One HistoryStore per process; it owns the engine."""

from __future__ import annotations

import fcntl
import math
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from sqlalchemy import Engine, case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine, select

from joulebot.exchange import Result
from joulebot.history.tables import ChatPreference, Exchange, User


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a share correct: sound for small n and 0 % or 100 %."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class CategoryStats(BaseModel):
    model: str
    category: str
    box: str
    energy_source: str  # never averaged across boxes or meters: each pair is its own row
    answers: int
    mean_total_j: float
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


class ScoreTask(BaseModel):
    """A measured benchmark answer that has not been scored yet."""

    id: int
    request_id: str
    category: str
    prompt: str
    answer: str


class ModelStats(BaseModel):
    model: str
    answers: int
    mean_total_j: float
    mean_attributable_j: float | None
    mean_sci_g: float | None
    j_per_token: float | None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # The worker writes while bots read: wait for the lock instead of failing at once.
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic), from empty or from any older one."""
    config = alembic_config()
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        lock_path = Path(f"{engine.url.database}.migrate-lock")
        with open(lock_path, "w") as lock:  # SQLite has no advisory locks: a file lock across processes
            fcntl.flock(lock, fcntl.LOCK_EX)
            _upgrade(config, engine)
    else:
        _upgrade(config, engine)


def _upgrade(config: Config, engine: Engine) -> None:
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class HistoryStore:
    """Queries over one database. `HistoryStore.open(url)` also brings its schema up to date."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)

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

    def record(self, result: Result) -> int:
        """Store one finished exchange; returns its id. The Result's own id fields stay unset.

        The earlier turns a request carried are not stored again with it: each lives in its own
        exchange (found through `parent_id`), so forgetting or retention removes every copy.
        """
        req, energy, carbon = result.request, result.energy, result.carbon
        # the samples go in their own column, once; the earlier turns in their own exchanges
        stored = result.model_dump(mode="json", exclude={"energy": {"machine": {"trace"}}, "request": {"turns"}})
        with Session(self.engine) as session:
            user = self._user(session, req.platform, req.user_id)
            row = Exchange(
                request_id=req.id,
                user_id=user.id,
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
            )
            session.add(row)
            session.commit()
            return row.id  # type: ignore[return-value]

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

    def preferences(self, platform: str, platform_user_id: str) -> tuple[str | None, str | None]:
        """(default model, units) the user chose, None where they did not. A read only: no user row is made."""
        with Session(self.engine) as session:
            query = select(User.default_model, User.units).where(
                User.platform == platform, User.platform_user_id == platform_user_id
            )
            row = session.exec(query).first()
        return (row[0], row[1]) if row else (None, None)

    def set_preferences(
        self, platform: str, platform_user_id: str, *, model: str | None = None, units: str | None = None
    ) -> None:
        with Session(self.engine) as session:
            user = self._user(session, platform, platform_user_id)
            if model is not None:
                user.default_model = model
            if units is not None:
                user.units = units
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
        """The exchange whose answer a platform message of this chat shows (replies continue from it)."""
        with Session(self.engine) as session:
            query = select(Exchange).where(
                Exchange.platform == platform, Exchange.chat_id == chat_id, Exchange.message_ref == message_ref
            )
            return session.exec(query.order_by(Exchange.id.desc())).first()  # type: ignore[union-attr]

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
            user = self._user(session, platform, platform_user_id)
            rows = session.exec(select(Exchange).where(Exchange.user_id == user.id)).all()
            for row in rows:
                _scrub(row)
                row.user_id = None
                session.add(row)
            user.default_model = user.units = user.system_prompt = None
            session.add(user)
            session.commit()
            return len(rows)

    def model_stats(self) -> list[ModelStats]:
        """Per-model averages over every first question with a measured or estimated total.

        Continued turns carry their conversation as context and cost more: they are kept apart
        (`continued_stats`) so that the figures stay comparable between models.
        """
        with Session(self.engine) as session:
            query = (
                select(
                    Exchange.model,
                    func.count(),
                    func.avg(Exchange.energy_total_j),
                    func.avg(Exchange.energy_attributable_j),
                    func.avg(Exchange.sci_g),
                    func.sum(Exchange.energy_total_j),
                    func.sum(Exchange.completion_tokens),
                )
                .where(Exchange.energy_total_j.is_not(None), Exchange.turn == 1)  # type: ignore[union-attr]
                .group_by(Exchange.model)
                .order_by(func.avg(Exchange.energy_total_j))
            )
            rows = session.exec(query).all()
        return [
            ModelStats(
                model=model,
                answers=n,
                mean_total_j=total,
                mean_attributable_j=attributable,
                mean_sci_g=sci,
                j_per_token=(energy / tokens) if tokens else None,
            )
            for model, n, total, attributable, sci, energy, tokens in rows
        ]

    def category_stats(self, request_id_prefix: str | None = None, continued: bool = False) -> list[CategoryStats]:
        """Per model, task category, box and meter, over first questions with a total energy (or one run's).

        Figures from different boxes or meters are never averaged together: each pair is its own row.
        `continued=True`: over the later turns of conversations instead (they carry context, cost more).
        """
        columns = (
            Exchange.model, Exchange.category, Exchange.energy_total_j, Exchange.energy_attributable_j,
            Exchange.operational_g, Exchange.sci_g, Exchange.completion_tokens, Exchange.correct,
            Exchange.box, Exchange.energy_source,
        )  # fmt: skip
        turn = Exchange.turn > 1 if continued else Exchange.turn == 1
        query = select(*columns).where(Exchange.energy_total_j.is_not(None), turn)  # type: ignore[union-attr]
        if request_id_prefix:
            query = query.where(Exchange.request_id.startswith(request_id_prefix))  # type: ignore[attr-defined]
        groups: dict[tuple[str, str, str, str], list] = {}
        with Session(self.engine) as session:
            for row in session.exec(query).all():
                groups.setdefault((row[0], row[1], row[8], row[9]), []).append(row)
        return [_summarise(*key, rows) for key, rows in sorted(groups.items())]

    def greener_hint(
        self, category: str, model: str, candidates: list[str], box: str, source: str, min_scored: int = 5
    ) -> str | None:
        """'as accurate on translation here (80 % vs 70 % right), tinyllama: 4× less energy than mistral'.

        Only from this box and meter, only for a model whose measured accuracy on the task is
        not worse than this one's within the intervals (its 95 % Wilson interval reaches this
        model's share correct), and only when it used at least 2× less energy on average.
        Without scores for both models there is no hint: cheaper is no use if it is wrong.
        """
        query = (
            select(
                Exchange.model,
                func.avg(Exchange.energy_total_j),
                func.count(Exchange.correct),
                func.sum(case((Exchange.correct.is_(True), 1), else_=0)),  # type: ignore[union-attr]
            )
            .where(
                Exchange.category == category,
                Exchange.box == box,
                Exchange.energy_source == source,
                Exchange.energy_total_j.is_not(None),  # type: ignore[union-attr]
                Exchange.turn == 1,
            )
            .group_by(Exchange.model)
        )
        with Session(self.engine) as session:
            found = {m: (avg, n, right or 0) for m, avg, n, right in session.exec(query).all() if n >= min_scored}
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
        return (
            f"as accurate on {category} here ({other_share:.0%} vs {share:.0%} right), "
            f"{best} used {ratio:.0f}× less energy than {model}"
        )

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
            return len(rows)

    def set_score(self, exchange_id: int, correct: bool | None, score: float | None, note: str) -> None:
        with Session(self.engine) as session:
            row = session.get(Exchange, exchange_id)
            if row is None:
                return
            row.correct, row.score, row.score_note = correct, score, note[:200]
            session.add(row)
            session.commit()

    def answer_rows(self, request_id_prefix: str) -> list[dict]:
        """One benchmark run, one row per answer (for its CSV), with its score."""
        keep = (
            "request_id", "model", "category", "box", "energy_source", "energy_measured", "energy_total_j",
            "energy_attributable_j", "sci_g", "completion_tokens", "seconds", "correct", "score", "score_note",
        )  # fmt: skip
        query = select(Exchange).where(Exchange.request_id.startswith(request_id_prefix)).order_by(Exchange.id)  # type: ignore[attr-defined,arg-type]
        with Session(self.engine) as session:
            return [{c: getattr(row, c) for c in keep} for row in session.exec(query).all()]

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
        """Retention: prompts and answers older than `days` are deleted; the measurements stay."""
        cutoff = datetime.now(UTC) - timedelta(days=days)
        with Session(self.engine) as session:
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


def _summarise(model: str, category: str, box: str, source: str, rows: list) -> CategoryStats:
    def mean(values: list) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.fmean(present) if present else None

    totals = [r[2] for r in rows]
    tokens = sum(r[6] for r in rows)
    scored = [r for r in rows if r[7] is not None]
    correct = sum(bool(r[7]) for r in scored)
    low, high = wilson(correct, len(scored)) if scored else (None, None)
    scored_sci = [r[5] for r in scored]
    return CategoryStats(
        model=model,
        category=category,
        box=box,
        energy_source=source,
        scored=len(scored),
        correct=correct,
        accuracy=correct / len(scored) if scored else None,
        accuracy_low=low,
        accuracy_high=high,
        j_per_correct=sum(r[2] for r in scored) / correct if correct else None,
        sci_per_correct_g=sum(scored_sci) / correct if correct and None not in scored_sci else None,
        answers=len(rows),
        mean_total_j=statistics.fmean(totals),
        mean_attributable_j=mean([r[3] for r in rows]),
        mean_co2e_g=mean([r[4] for r in rows]),
        mean_sci_g=mean([r[5] for r in rows]),
        j_per_token=sum(totals) / tokens if tokens else None,
        stdev_total_j=statistics.stdev(totals) if len(totals) > 1 else 0.0,
    )
