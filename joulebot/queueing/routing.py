"""Which live box answers a request: the greenest, the fastest, or a named one.

`greenest` (the default) ranks the live boxes offering the model by the answer's
expected CO2e there: expected energy × the box's current grid intensity + its
embodied share for the expected time. The expected energy is the box's own
measured mean for this model and task once it has `MIN_ANSWERS`; else the mean
of the boxes whose energy figures cover the same thing (wall meter, components,
or estimate: never mixed); else unknown. Equal expectations (to two significant
figures), and unknown ones, are decided by intensity, then by queue length.
A box whose expected wait exceeds `MAX_ROUTING_WAIT_S` gives way to the next
one that answers within it.

Pure functions over `BoxView`s: reading the fleet is `Fleet.boxes()` (one round trip).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from joulebot.carbon.sci import J_PER_KWH
from joulebot.exchange import Routing
from joulebot.queueing.fleet import BoxView

POLICIES = ("greenest", "fastest")
MIN_ANSWERS = 5  # a box's own mean counts from this many answers of the model and task
DEFAULT_ANSWER_S = 30.0  # a box that has answered nothing yet: assume this per queued job


class RoutingRefused(LookupError):
    """No box can take the request; the message (one line) names what is available."""


@dataclass(frozen=True)
class Expectation:
    view: BoxView
    energy_j: float | None
    energy_basis: str  # "measured here (12 answers)", "mean of wall-metered boxes", "unknown"
    seconds: float | None  # expected answer time
    wait_s: float  # expected wait before this answer starts

    @property
    def intensity(self) -> float:
        return self.view.profile.intensity_g_per_kwh

    @property
    def co2e_g(self) -> float | None:
        if self.energy_j is None:
            return None
        return self.energy_j / J_PER_KWH * self.intensity + self.view.profile.embodied_g_per_s * (self.seconds or 0.0)


def _names(views: Iterable[BoxView]) -> str:
    return ", ".join(v.name for v in views) or "none"


class FleetMeans:
    """The fleet's mean for one model and task per meter scope: answers-weighted over the boxes with
    enough answers, computed only when a box lacks its own, and once per decision."""

    def __init__(self, views: list[BoxView], model: str, category: str | None) -> None:
        self.views, self.model, self.category = views, model, category
        self._means: dict[str, tuple[float, float]] | None = None

    def get(self, scope: str) -> tuple[float, float] | None:
        if self._means is None:
            sums: dict[str, list[float]] = {}
            for view in self.views:
                m = view.profile.mean(self.model, self.category)
                if m is not None and m.answers >= MIN_ANSWERS:
                    acc = sums.setdefault(view.profile.meter_scope, [0.0, 0.0, 0.0])
                    acc[0] += m.mean_total_j * m.answers
                    acc[1] += m.mean_seconds * m.answers
                    acc[2] += m.answers
            self._means = {key: (j / n, s / n) for key, (j, s, n) in sums.items()}
        return self._means.get(scope)


def expect(view: BoxView, fleet: FleetMeans, model: str, category: str | None) -> Expectation:
    profile = view.profile
    own = profile.mean(model, category)
    wait = view.load * _answer_seconds(view)
    if own is not None and own.answers >= MIN_ANSWERS:
        return Expectation(view, own.mean_total_j, f"measured here ({own.answers} answers)", own.mean_seconds, wait)
    seconds = profile.mean_seconds(model)
    fleet_mean = fleet.get(profile.meter_scope)
    if fleet_mean is not None:
        basis = f"mean of the {profile.meter_scope}-metered boxes"
        return Expectation(view, fleet_mean[0], basis, seconds or fleet_mean[1], wait)
    return Expectation(view, None, "unknown", seconds, wait)


def _answer_seconds(view: BoxView) -> float:
    """The box's mean answer time over everything it answered (for its queue's expected wait)."""
    seconds = view.profile.answer_seconds
    return DEFAULT_ANSWER_S if seconds is None else seconds


def _two_figures(value: float) -> float:
    return float(f"{value:.2g}")


def route(
    boxes: list[BoxView],
    model: str,
    category: str | None,
    policy: str,
    max_wait_s: float = 0.0,
    also: tuple[str, ...] = (),
    vision: bool = False,
) -> Routing:
    """The box for one request under `policy` (greenest, fastest, or a box name); RoutingRefused if none.

    `also`: further models the box must offer (a comparison runs both on one box). `vision`: the
    request carries images, so only boxes where the model sees count.
    """
    live = [v for v in boxes if v.live]
    wanted = (model, *also)
    if policy not in POLICIES:
        return _pinned(boxes, live, policy, wanted, category)
    offering = [v for v in live if all(v.profile.offers(m, vision) for m in wanted)]
    if not offering:
        raise RoutingRefused(_nobody_offers(boxes, live, wanted, vision))
    fleet = FleetMeans(boxes, model, category)
    expectations = [expect(v, fleet, model, category) for v in offering]
    if policy == "fastest":
        best = min(expectations, key=lambda e: (e.wait_s + (e.seconds or 0.0), e.view.load, e.intensity))
        return _decision(best, "fastest", f"shortest expected wait (~{best.wait_s:.0f} s)", len(offering), category)
    return _greenest(expectations, max_wait_s, category)


def _greenest(expectations: list[Expectation], max_wait_s: float, category: str | None) -> Routing:
    known = all(e.co2e_g is not None for e in expectations)
    if known:
        ranked = sorted(expectations, key=lambda e: (_two_figures(e.co2e_g or 0.0), e.intensity, e.view.load))
    else:
        ranked = sorted(expectations, key=lambda e: (e.intensity, e.view.load))
    best, note = ranked[0], ""
    if max_wait_s > 0 and best.wait_s > max_wait_s:
        within = [e for e in ranked if e.wait_s <= max_wait_s]
        chosen = within[0] if within else min(ranked, key=lambda e: e.wait_s)
        note = f"; {best.view.name} would wait ~{best.wait_s:.0f} s (over {max_wait_s:g} s)"
        best = chosen
    if len(expectations) == 1:
        why = "the only live box offering it"
    elif known:
        why = "lowest expected CO2e"
    else:
        why = "lowest grid intensity (energy not measured on every box yet)"
    reason = f"{why}, {best.intensity:.3g} g/kWh{note}"
    return _decision(best, "greenest", reason, len(expectations), category)


def _decision(best: Expectation, policy: str, reason: str, candidates: int, category: str | None) -> Routing:
    return Routing(
        box=best.view.name,
        queue=best.view.profile.queue,
        policy=policy,
        reason=reason,
        intensity_g_per_kwh=best.intensity,
        expected_j=best.energy_j,
        expected_co2e_g=best.co2e_g,
        expected_wait_s=best.wait_s,
        category=category,
        candidates=candidates,
    )


def _pinned(
    boxes: list[BoxView], live: list[BoxView], name: str, models: tuple[str, ...], category: str | None
) -> Routing:
    view = next((v for v in boxes if v.name.lower() == name.strip().lower()), None)
    if view is None:
        raise RoutingRefused(f"unknown box {name!r}; live boxes: {_names(live)}")
    if not view.live:
        since = ago(view.seen_age_s)
        raise RoutingRefused(f"box {view.name} is down (last seen {since} ago); live boxes: {_names(live)}")
    missing = [m for m in models if not view.profile.offers(m)]
    if missing:
        offered = ", ".join(m.name for m in view.profile.models) or "none"
        raise RoutingRefused(f"box {view.name} does not offer {missing[0]}; it offers: {offered}")
    chosen = expect(view, FleetMeans(boxes, models[0], category), models[0], category)
    return _decision(chosen, "pinned", f"pinned, {chosen.intensity:.3g} g/kWh", 1, category)


def _nobody_offers(boxes: list[BoxView], live: list[BoxView], models: tuple[str, ...], vision: bool = False) -> str:
    if not live:
        seen = ", ".join(f"{v.name} ({ago(v.seen_age_s)} ago)" for v in boxes) or "none"
        return f"no measurement box is live (lately seen: {seen})"
    offered = sorted({m.name for v in live for m in v.profile.models if m.vision or not vision})
    wanted = " and ".join(models) + (" with images" if vision else "")
    return f"no live box offers {wanted}; offered: {', '.join(offered) or 'none'} (live boxes: {_names(live)})"


def ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def same_box(first: Routing) -> Routing:
    """The decision for a comparison's second request: where the first one goes (its model's figures unknown)."""
    reason = f"same box as A, so the ratio is fair; {first.intensity_g_per_kwh or 0:.3g} g/kWh"
    return first.model_copy(update={"policy": "compare", "reason": reason, "expected_j": None, "expected_co2e_g": None})
