"""The footer under every answer: energy, carbon and model, each saying where it came from."""

from __future__ import annotations

from joulebot.attachments.parts import images_label
from joulebot.exchange import Result, Units
from joulebot.metering import Energy
from joulebot.models.runner import REPETITION
from joulebot.number_format import grams, plus_minus, sig


def source_label(energy: Energy) -> str:
    reading = energy.machine
    if reading.joules is None:
        return f"unavailable: {reading.error or 'meter failed'}"
    if not reading.measured:
        return f"estimated, {reading.note or 'no meter here'}: {reading.method}"
    if reading.scope == "machine":
        label = f"measured at the wall by {reading.source}"
    else:
        label = f"measured by {reading.source} ({reading.method}), not the whole machine"
    return f"{label}; {reading.note}" if reading.note else label


def short_window_note(energy: Energy) -> str:
    """' · short window: ± 24 %' when the window is under ten of its meter's update periods."""
    relative = energy.relative_uncertainty
    if not energy.short_window or relative is None:
        return ""
    return f" · short window: ± {relative * 100:.0f} %"


def energy_line(energy: Energy, units: Units) -> str:
    if energy.total_j is None:
        return f"⚡ energy {source_label(energy)} · {sig(energy.seconds)} s"
    idle_w = energy.idle.watts if energy.idle else None
    avg_w = energy.avg_watts or 0.0  # known once total_j is
    short = short_window_note(energy)
    if units == "watts":
        band = None if energy.uncertainty_j is None else energy.uncertainty_j / energy.seconds
        above = "" if idle_w is None else f" ({sig(max(0.0, avg_w - idle_w))} W above {sig(idle_w)} W idle)"
        return (
            f"⚡ {sig(avg_w)}{plus_minus(band)} W avg over {sig(energy.seconds)} s{above}{short}"
            f" · {source_label(energy)}"
        )
    if energy.includes_reload:
        short += f" · includes a model reload ({sig(energy.reload_s or 0.0)} s): not comparable"
    above = ""
    if energy.attributable_j is not None:
        above = f" ({sig(energy.attributable_j)}{plus_minus(energy.attributable_uncertainty_j)} J above idle)"
    return (
        f"⚡ {sig(energy.total_j)}{plus_minus(energy.uncertainty_j)} J total{above}{short}"
        f" · {sig(avg_w)} W avg over {sig(energy.seconds)} s · {source_label(energy)}"
    )


def energy_caveat(energy: Energy) -> str:
    """What the CO2e figure inherits from the energy figure it is computed from."""
    if energy.total_j is None:
        return ""
    if not energy.measured:
        return " (from estimated energy)"
    if energy.machine.scope != "machine":
        return " (from CPU+GPU energy only, not the whole machine)"
    return ""


def carbon_line(result: Result) -> str:
    c = result.carbon
    intensity = f"{sig(c.intensity.g_per_kwh)} g/kWh ({c.intensity.label()})"
    embodied = f"embodied {grams(c.embodied_g)} ({c.embodied_source})"
    if c.operational_g is None or c.sci_g is None:
        return f"🌍 CO2e unavailable (no energy figure) · {intensity} · {embodied}"
    caveat = energy_caveat(result.energy)
    return f"🌍 {grams(c.operational_g)} CO2e{caveat} · {intensity} · SCI {grams(c.sci_g)}/answer{caveat} · {embodied}"


def model_line(result: Result) -> str:
    parts = [f"🤖 {result.model} ({result.model_size})", f"{result.completion_tokens} tokens"]
    if result.j_per_token is not None:
        parts.append(f"{sig(result.j_per_token)} J/token")
    warmup = result.warmup_energy
    if warmup is not None and warmup.total_j is not None:
        spent = f"{sig(warmup.total_j)}{plus_minus(warmup.uncertainty_j)} J"
        parts.append(f"loaded in {sig(result.load_s)} s and warmed up ({spent}) before this answer, not counted in it")
    return " · ".join(parts)


def context_cost(result: Result) -> str:
    """' · reading the context: 3.1 ± 0.4 J (41 %)': the prefill's share of the answer (or why not split)."""
    phases = result.energy.phases
    if phases is None:
        return ""
    if phases.prefill_j is None:
        return f" · reading the context: not split ({phases.error})"
    share = "" if phases.prefill_share is None else f" ({phases.prefill_share * 100:.0f} %)"
    return f" · reading the context: {sig(phases.prefill_j, 2)}{plus_minus(phases.prefill_uncertainty_j)} J{share}"


def conversation_lines(result: Result) -> list[str]:
    """For a later turn: the context it carried (why it cost more), and once, what was forgotten."""
    lines = []
    if result.request.turn > 1:
        lines.append(f"🧵 turn {result.request.turn} · {result.prompt_tokens:,} context tokens{context_cost(result)}")
    if result.dropped_turns and not result.request.told_forgotten:
        lines.append(
            f"🧠 the start of this conversation no longer fits {result.model}'s context: "
            f"the first {result.dropped_turns} messages were left out"
        )
    return lines


def routing_line(result: Result) -> str | None:
    """Which box answered and why it was chosen (fleets only: one box needs no reason)."""
    routing = result.routing
    return None if routing is None else f"📍 {result.box}: {routing.reason}"


def answer_link(result: Result, public_url: str) -> str | None:
    """The answer's private dashboard page (its power trace, prompt and answer), once it is stored."""
    if not public_url or not result.share_token or result.exchange_id is None:
        return None
    return f"{public_url.rstrip('/')}/a/{result.share_token}"


def ending_note(result: Result) -> str | None:
    """Why the answer ended early, when it did: the runner stopped a loop, or MAX_TOKENS cut it."""
    if result.finish_reason == REPETITION:
        return "… stopped: the model was repeating itself"
    if result.finish_reason == "length":
        return f"… cut at {result.request.max_tokens} tokens"
    return None


def footer(result: Result, units: Units | None = None, public_url: str = "") -> str:
    lines = [note] if (note := ending_note(result)) else []
    lines += [energy_line(result.energy, units or result.request.units), carbon_line(result), model_line(result)]
    if result.request.images:  # what the model looked at: answers with images cost more to read
        lines.append(images_label(result.request.images))
    lines += conversation_lines(result)
    if (where := routing_line(result)) is not None:
        lines.append(where)
    if result.hint:
        lines.append(f"💡 {result.hint}")
    if result.history_error:
        lines.append(f"⚠️ {result.history_error}")
    link = answer_link(result, public_url)
    if link:
        lines.append(f"🔗 {link}")
    return "\n".join(lines)


def energy_ratio(a: Result, b: Result) -> str:
    """One sentence comparing two answers' total energy."""
    ea, eb = a.energy.total_j, b.energy.total_j
    if ea is None or eb is None or ea <= 0 or eb <= 0:
        return "⚖️ no ratio: one of the energies is unavailable"
    if ea >= eb:
        return f"⚖️ {a.model} (A) used {sig(ea / eb, 2)}× the energy of {b.model} (B)"
    return f"⚖️ {b.model} (B) used {sig(eb / ea, 2)}× the energy of {a.model} (A)"
