"""What the dashboard reads from history: SQL aggregates and single rows, on a read-only connection.

Figures from different boxes, meters, or measured vs estimated are kept apart: every
aggregate is grouped by a *basis* (box, energy source, measured or estimated), and by the
answers' generation settings (a model's answers of other sampling settings are other answers). Each mean's ± 95 %
is history's one definition (`Metric.mean`), the same as `joulebot stats` and the bots show.
Public queries never select a prompt, an answer or a user id; only `by_token` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from joulebot.carbon import Intensity
from joulebot.history import HistoryUnavailable, rollup
from joulebot.history.aggregates import METRICS, Metric, settings_note
from joulebot.history.api_keys import key_owner, owner_of_hash
from joulebot.history.budgets import NOTHING, EnergyUsed, energy_used
from joulebot.history.intervals import Basis, Mean
from joulebot.history.tables import Exchange
from joulebot.metering.reading import estimated_how

T = TypeVar("T")
EXCHANGES = Exchange.__table__  # type: ignore[attr-defined]
C = EXCHANGES.c
R = rollup.STATS_ROLLUP.c
BASIS = (R.box, R.energy_source, R.energy_measured, R.with_images)
READ_IMAGES = C.image_count > 0  # an answer's basis, as the rollup's `with_images` key

HOW_TO_GET_DATA = (
    'No answers in history yet. Ask something — joulebot ask "What is the capital of France?" — '
    "or run the benchmark (joulebot bench --models smollm2-135m --n 5), then reload this page."
)


def source_label(source: str, measured: bool) -> str:
    if not measured:
        return f"estimated {estimated_how(source)}, not a measurement"
    if source == "mcp39f511n":
        return f"measured at the wall by {source} (whole machine)"
    return f"measured by {source}, not the whole machine"


@dataclass(frozen=True, order=True)
class TableRow:
    """A table's row: one model's answers made with one set of generation settings."""

    model: str
    settings: str  # the tag of its generation settings ('' where not recorded)
    shown: bool = False  # the model has rows of other settings in this table: the label names these

    @property
    def label(self) -> str:
        return self.model + settings_note(self.settings, self.shown)


@dataclass
class TableSection:
    basis: Basis
    rows: list[TableRow]
    categories: list[str]
    cells: dict[tuple[TableRow, str], Mean] = field(default_factory=dict)
    chart: Any = None  # the heatmap, drawn by the page
    fmt: Any = None  # how the page writes this table's figures (the heatmap's too): one unit for all


def _read_only_engine(url: str) -> Engine:
    """SQLite opened read-only (a missing file is not created); PostgreSQL sessions set read-only."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return sa.create_engine(f"sqlite:///file:{quote(path)}?mode=ro&uri=true", connect_args={"timeout": 5})
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 3})

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection, _record) -> None:  # the dashboard writes nothing, and says so to the server
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_connection.commit()

    return engine


def _explain(exc: SQLAlchemyError) -> HistoryUnavailable:
    text = str(getattr(exc, "orig", exc)).lower()
    if (
        "no such table" in text
        or "undefinedtable" in type(getattr(exc, "orig", None)).__name__.lower()
        or ("does not exist" in text and "relation" in text)
    ):
        return HistoryUnavailable(HOW_TO_GET_DATA, empty=True)
    if "unable to open database file" in text:
        return HistoryUnavailable(HOW_TO_GET_DATA, empty=True)
    if "no such column" in text or ("column" in text and "does not exist" in text):
        return HistoryUnavailable(
            "The history database has an older schema than this dashboard: start the worker once "
            "(joulebot worker) to migrate it."
        )
    kind = type(getattr(exc, "orig", exc)).__name__
    return HistoryUnavailable(f"The history database is not reachable ({kind}); figures will be back when it is.")


class HistoryView:
    """Read-only queries for the dashboard and /metrics. Every method raises HistoryUnavailable on failure."""

    def __init__(self, url: str) -> None:
        self.engine = _read_only_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, query: Any) -> list[Any]:
        try:
            with self.engine.connect() as connection:
                return list(connection.execute(query).all())
        except (DBAPIError, SQLAlchemyError) as exc:
            raise _explain(exc) from None

    # -- the table -------------------------------------------------------------------------------------------
    def table(self, metric: Metric, box: str | None = None) -> list[TableSection]:
        """Mean ± 95 % CI of `metric` per model and category, one section per basis (from the
        statistics' rollup: a few hundred rows of sums, whatever the size of history)."""
        needs = metric.needs
        group = (*BASIS, R.model, R.generation_settings, R.category)  # answers of other settings: other rows
        query = sa.select(*group, *(sa.func.sum(R[name]) for name in needs)).group_by(*group)
        if box is not None:
            query = query.where(R.box == box)
        cells: dict[Basis, dict[tuple[str, str, str], Mean]] = {}
        for box_name, source, measured, images, model, settings, category, *summed in self._rows(query):
            sums = {name: float(value or 0) for name, value in zip(needs, summed, strict=True)}
            if metric.count(sums):
                cells.setdefault(Basis(box_name, source, bool(measured), bool(images)), {})[
                    (model, settings, category)
                ] = metric.mean(sums)
        sections = [_section(basis, cells[basis]) for basis in cells]
        return sorted(sections, key=lambda s: (s.basis.box, s.basis.images, not s.basis.measured, s.basis.source))

    def count(self) -> int:
        return int(self._rows(sa.select(sa.func.count()).select_from(EXCHANGES))[0][0])

    def boxes(self) -> list[str]:
        return sorted(r[0] for r in self._rows(_known("box")))  # sorted here: see _known

    def models(self) -> list[str]:
        return sorted(r[0] for r in self._rows(_known("model")))

    # -- answers -----------------------------------------------------------------------------------------------
    # never C.prompt, C.answer, C.user_id or C.share_token: these are all the public pages can show
    PUBLIC_COLUMNS = (
        C.id,
        C.model,
        C.category,
        C.prompt_tokens,
        C.completion_tokens,
        C.started_at,
        C.seconds,
        C.load_s,
        C.energy_total_j,
        C.energy_attributable_j,
        C.idle_w,
        C.energy_source,
        C.energy_measured,
        C.intensity_g_per_kwh,
        C.intensity_zone,
        C.intensity_provenance,
        C.operational_g,
        C.embodied_g,
        C.sci_g,
        C.box,
        C.meter_failures,
    )

    def latest(self, limit: int, offset: int = 0, model: str | None = None) -> list[dict]:
        query = sa.select(*self.PUBLIC_COLUMNS, C.result).order_by(C.id.desc()).limit(limit).offset(offset)
        if model is not None:
            query = query.where(C.model == model)
        return [_public(row) for row in self._rows(query)]

    def answer(self, exchange_id: int) -> dict | None:
        query = sa.select(*self.PUBLIC_COLUMNS, C.result, C.power_trace).where(C.id == exchange_id)
        rows = self._rows(query)
        return _public(rows[0], with_trace=True) if rows else None

    def by_token(self, token: str) -> dict | None:
        """The private page: the public figures plus the prompt and answer (empty once forgotten)."""
        query = sa.select(*self.PUBLIC_COLUMNS, C.result, C.power_trace, C.prompt, C.answer).where(
            C.share_token == token
        )
        rows = self._rows(query)
        if not rows:
            return None
        answer = _public(rows[0], with_trace=True)
        answer.update(prompt=rows[0].prompt, answer=rows[0].answer)
        return answer

    # -- boxes and models --------------------------------------------------------------------------------------
    def box_summaries(self, now: datetime | None = None) -> dict[str, dict]:
        """Per box: its latest answer's zone, intensity, source and idle power; answers in the last hour."""
        now = now or datetime.now(UTC)
        boxes = _known("box").subquery()
        # per box, its largest id: one probe of the (box, id) index each
        last_id = sa.select(sa.func.max(C.id)).where(C.box == boxes.c.box).correlate(boxes).scalar_subquery()
        latest = self._rows(
            sa.select(C.box, C.started_at, C.energy_source, C.energy_measured, C.idle_w, C.result).where(
                C.id.in_(sa.select(last_id).select_from(boxes))
            )
        )
        # counted here, not grouped in SQL: with GROUP BY the planner may walk the whole box index instead of
        # taking the last hour's few rows from the started_at index
        hour = Counter(r[0] for r in self._rows(sa.select(C.box).where(C.started_at >= now - timedelta(hours=1))))
        summaries = {}
        for box, started_at, source, measured, idle_w, result in latest:
            summaries[box] = {
                "box": box,
                "last_answer_at": started_at,
                "meter": source_label(source, bool(measured)),
                "idle_w": idle_w,
                "intensity": _intensity(result),
                "answers_last_hour": int(hour.get(box, 0)),
            }
        return summaries

    def distribution(self, model: str, metric: Metric, limit: int = 20_000) -> dict[tuple[Basis, str], list[float]]:
        """One model's per-answer values (the newest `limit`), per basis and generation settings, for
        histograms."""
        query = (
            sa.select(C.box, C.energy_source, C.energy_measured, READ_IMAGES, C.generation_settings, metric.column)
            .where(C.model == model, metric.present, C.sampling.is_(None))  # as the statistics: rollup.py
            .order_by(C.id.desc())
            .limit(limit)
        )
        values: dict[tuple[Basis, str], list[float]] = {}
        for box, source, measured, images, settings, value in self._rows(query):
            values.setdefault((Basis(box, source, bool(measured), bool(images)), settings), []).append(float(value))
        return values

    def daily(self, model: str, metric: Metric) -> dict[tuple[Basis, str], list[tuple[str, Mean]]]:
        """One model's mean per day (UTC dates as the database writes them), per basis and generation
        settings, oldest first."""
        day = sa.func.date(C.started_at)
        sums = _per_answer_sums(metric)
        group = (C.box, C.energy_source, C.energy_measured, READ_IMAGES, C.generation_settings, day)
        query = (
            sa.select(*group, *sums.values())
            .where(C.model == model, metric.present, C.sampling.is_(None))  # as the statistics: rollup.py
            .group_by(*group)
            .order_by(day)
        )
        days: dict[tuple[Basis, str], list[tuple[str, Mean]]] = {}
        for box, source, measured, images, settings, date, *summed in self._rows(query):
            mean = metric.mean({name: float(value or 0) for name, value in zip(sums, summed, strict=True)})
            basis = Basis(box, source, bool(measured), bool(images))
            days.setdefault((basis, settings), []).append((str(date), mean))
        return days

    # -- the API ------------------------------------------------------------------------------------------------
    def read_or(self, reading: Callable[[Connection], T], empty: T) -> T:
        """`reading` on a connection; `empty` when there is no history yet (HistoryUnavailable otherwise)."""
        try:
            with self.engine.connect() as connection:
                return reading(connection)
        except (DBAPIError, SQLAlchemyError) as exc:
            explained = _explain(exc)
            if explained.empty:
                return empty
            raise explained from None

    def api_key_owner(self, key: str, hashed: bool = False) -> str | None:
        """The name of the working API key `key` is (or, `hashed`, whose SHA-256 it is); None: no such
        key, or none made yet (no history: no key works yet)."""
        return self.read_or(lambda c: owner_of_hash(c, key) if hashed else key_owner(c, key), None)

    def energy_used(self, since: datetime, platform: str, platform_user_id: str | None = None) -> EnergyUsed:
        """What the daily energy budgets count (`history.budgets.energy_used`); nothing without history."""
        return self.read_or(lambda connection: energy_used(connection, since, platform, platform_user_id), NOTHING)

    def model_means(self) -> dict[tuple[str, str], list[tuple[Basis, str, Mean]]]:
        """Per (model, box): the mean energy per answer ± 95 % of each basis and generation settings (their
        tag), over every task."""
        metric = METRICS["j_answer"]
        needs = metric.needs
        group = (R.model, *BASIS, R.generation_settings)
        query = sa.select(*group, *(sa.func.sum(R[name]) for name in needs)).group_by(*group)
        means: dict[tuple[str, str], list[tuple[Basis, str, Mean]]] = {}
        for model, box, source, measured, images, settings, *summed in self._rows(query):
            sums = {name: float(value or 0) for name, value in zip(needs, summed, strict=True)}
            if metric.count(sums):
                basis = Basis(box, source, bool(measured), bool(images))
                means.setdefault((model, box), []).append((basis, settings, metric.mean(sums)))
        return means

    # -- /metrics ----------------------------------------------------------------------------------------------
    def totals(self, box: str | None = None) -> list[Any]:
        """(model, box, category, source, measured, generation settings, answers, joules, meter failures) for
        the counters: the rollup's sums, plus the answers without a total energy (which it leaves out; a
        partial index)."""
        group = (R.model, R.box, R.category, R.energy_source, R.energy_measured, R.generation_settings)
        summed = sa.select(*group, *(sa.func.sum(R[f]) for f in ("answers", "total_j", "meter_failures")))
        group_x = (C.model, C.box, C.category, C.energy_source, C.energy_measured, C.generation_settings)
        unmeasured = sa.select(*group_x, sa.func.count(), sa.literal(0.0), sa.func.sum(C.meter_failures)).where(
            C.energy_total_j.is_(None)
        )
        if box is not None:
            summed, unmeasured = summed.where(R.box == box), unmeasured.where(C.box == box)
        counted: dict[tuple, list[float]] = {}
        for *key, answers, joules, failures in [
            *self._rows(summed.group_by(*group)),
            *self._rows(unmeasured.group_by(*group_x)),
        ]:
            figures = counted.setdefault(tuple(key), [0, 0.0, 0])
            figures[0] += int(answers or 0)
            figures[1] += float(joules or 0.0)
            figures[2] += int(failures or 0)
        return [(*key, *figures) for key, figures in counted.items()]

    def energy_buckets(self, box: str | None = None) -> list[Any]:
        """(model, box, source, generation settings, with images, count ≤ each of rollup.ENERGY_BUCKETS...,
        count, sum) of total energy per answer."""
        sums = [sa.func.sum(R[rollup.bucket(b)]) for b in rollup.ENERGY_BUCKETS]
        group = (R.model, R.box, R.energy_source, R.generation_settings, R.with_images)
        query = sa.select(*group, *sums, sa.func.sum(R.answers), sa.func.sum(R.total_j)).group_by(*group)
        if box is not None:
            query = query.where(R.box == box)
        return self._rows(query)


def _section(basis: Basis, cells: dict[tuple[str, str, str], Mean]) -> TableSection:
    """One basis' table from its cells by (model, settings, category): a row per model and settings, the
    settings named where a model has rows of several."""
    kinds = Counter(model for model, _ in {(m, s) for m, s, _ in cells})
    section = TableSection(basis, [], sorted({c for _, _, c in cells}))
    for (model, settings, category), mean in cells.items():
        section.cells[(TableRow(model, settings, kinds[model] > 1), category)] = mean
    section.rows = sorted({row for row, _ in section.cells})
    return section


def _per_answer_sums(metric: Metric) -> dict[str, Any]:
    """The sums `metric.mean` needs, straight from the exchanges (what the rollup keeps per its keys)."""
    x = metric.column
    sums = {
        metric.sums[0]: sa.func.count(x),
        metric.sums[1]: sa.func.sum(x),
        metric.sums[2]: sa.func.sum(x * x),
        "band_j": sa.func.sum(sa.func.coalesce(C.energy_uncertainty_j, 0.0)),
        "total_j": sa.func.sum(C.energy_total_j),
    }
    if metric.metered is not None:
        count, total, column = metric.metered
        sums.update({count: sa.func.count(column), total: sa.func.sum(column)})
    return sums


def _known(column: str) -> Any:
    """Every box or model in history, from the rollup's few rows and the answers without a total energy
    (which it leaves out: a small partial index), never from a scan of the exchanges. Unordered: with an
    ORDER BY, SQLite walks the whole (box, id) index to avoid a sort of a few names."""
    return sa.union(
        sa.select(R[column].label(column)),
        sa.select(C[column].label(column)).where(C.energy_total_j.is_(None)),
    )


def _intensity(result: dict | None) -> Intensity | None:
    try:
        return Intensity.model_validate(result["carbon"]["intensity"]) if result else None
    except (KeyError, TypeError, ValueError):
        return None


def _public(row: Any, with_trace: bool = False) -> dict:
    """A row as the public pages show it; derived figures and labels included."""
    data = {
        k: getattr(row, k)
        for k in (
            "id",
            "model",
            "category",
            "prompt_tokens",
            "completion_tokens",
            "started_at",
            "seconds",
            "load_s",
            "energy_total_j",
            "energy_attributable_j",
            "idle_w",
            "energy_source",
            "energy_measured",
            "intensity_g_per_kwh",
            "intensity_zone",
            "intensity_provenance",
            "operational_g",
            "embodied_g",
            "sci_g",
            "box",
            "meter_failures",
        )
    }
    result = row.result or {}
    energy = result.get("energy", {})
    machine = energy.get("machine", {})
    data.update(
        source_label=source_label(row.energy_source, bool(row.energy_measured)),
        method=machine.get("method", ""),
        note=machine.get("note", ""),
        energy_error=machine.get("error"),
        uncertainty_j=energy.get("uncertainty_j"),  # None for answers stored before meters reported one
        phases=energy.get("phases"),  # prefill and decode apart (a dict as stored; None before they were split)
        intensity=_intensity(result),
        model_size=result.get("model_size", ""),
        finished_at=result.get("finished_at"),
        j_per_token=(row.energy_total_j / row.completion_tokens)
        if row.energy_total_j is not None and row.completion_tokens > 0
        else None,
    )
    if with_trace:
        data["trace"] = [(float(t), float(w)) for t, w in (row.power_trace or [])]
    return data
