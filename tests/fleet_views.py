"""A measurement box as the fleet sees it (its profile, liveness and queue), for routing by hand."""

from __future__ import annotations

from joulebot.queueing.fleet import BoxModel, BoxProfile, BoxView, MeanEnergy


def box_view(
    name: str,
    g_per_kwh: float,
    means: list[tuple[str, str, int, float]] = (),
    queued: int = 0,
    scope: str = "wall",
    live: bool = True,
    models: tuple[str, ...] = ("llama3",),
) -> BoxView:
    profile = BoxProfile(
        box=name,
        queue=name,
        zone="XX",
        intensity_g_per_kwh=g_per_kwh,
        intensity_provenance="static",
        intensity_label="XX",
        meter_scope=scope,
        meters=["m"],
        models=[BoxModel(name=m, size="8.0B", parameters_b=8.0) for m in models],
        means=[MeanEnergy(model=m, category=c, answers=n, mean_total_j=j, mean_seconds=10.0) for m, c, n, j in means],
    )
    return BoxView(profile, seen_age_s=1.0 if live else 600.0, queued=queued, running=0, live=live, state="idle")
