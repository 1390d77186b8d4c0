"""The fleet as text: `joulebot boxes` in full, the chat bots' /boxes briefly."""

from __future__ import annotations

from joulebot.number_format import sig
from joulebot.queueing.fleet import BoxView
from joulebot.queueing.routing import ago


def box_lines(views: list[BoxView], brief: bool) -> list[str]:
    """One block per box (one line each when `brief`), live boxes first."""
    lines: list[str] = []
    for view in sorted(views, key=lambda v: (not v.live, v.name)):
        p = view.profile
        alive = "live" if view.live else f"down, last seen {ago(view.seen_age_s)} ago"
        load = f"queue {view.queued}" + (f" + {view.running} running" if view.running else "")
        state = view.state if view.live else "—"
        intensity = f"{p.intensity_g_per_kwh:.3g} g/kWh ({p.intensity_provenance})"
        models = ", ".join(f"{m.name} ({m.size}{', sees images' if m.vision else ''})" for m in p.models) or "none"
        if brief:
            lines.append(f"• {p.box} — {alive} · {state} · {p.zone} {intensity} · {p.meter_scope} · {load} · {models}")
            continue
        lines += [
            f"{p.box} · {alive} · {state} · {load} (queue {p.queue})",
            f"  zone       {p.zone}: {p.intensity_g_per_kwh:.3g} g/kWh ({p.intensity_label})",
            f"  meters     {p.meter_scope}: {'; '.join(p.meters)}",
            f"  models     {models}",
        ]
        measured = [f"{m.model}/{m.category} {sig(m.mean_total_j)} J ({m.answers})" for m in p.means]
        if measured:
            lines.append(f"  measured   {', '.join(measured)} (mean total energy per answer, this box only)")
    return lines
