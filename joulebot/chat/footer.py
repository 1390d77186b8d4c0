"""The footer under every answer: energy, carbon and model, and how the figures were obtained.

Two forms. The short one (chat, terminal) says once, on a line of its own, how the whole bill was
obtained (measured and by which meter, or estimated and from what): the CO2e and the SCI are
computed from the energy and inherit what it is. The long one (`joulebot ask --verbose`, like the
dashboard's answer page and the API's bill) says it beside each figure, with the estimate's model
and where the embodied share's TE comes from (a placeholder unless EMBODIED_TE_KG is set: said by
`joulebot carbon` and the README, not under every answer).
"""

from __future__ import annotations

from joulebot.attachments.parts import images_label
from joulebot.exchange import Result, Units
from joulebot.metering import Energy
from joulebot.metering.reading import estimated_how
from joulebot.models.runner import REPETITION
from joulebot.number_format import mass_unit, plus_minus, sig


def source_label(energy: Energy) -> str:
    """How the energy figure was obtained, in full (the long footer's, the API bill's `label`)."""
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


def bill_label(energy: Energy) -> str | None:
    """The short footer's one line on how every figure of the bill was obtained; None without a figure
    (the energy line says why there is none)."""
    reading = energy.machine
    if energy.total_j is None:
        return None
    if not reading.measured:
        why = reading.note or "no meter here"
        return f"📏 energy, CO2e and SCI estimated {estimated_how(reading.source)} ({why}), not measured"
    note = f"; {reading.note}" if reading.note else ""
    if reading.scope == "machine":
        return f"📏 measured at the wall by {reading.source}{note}"
    only = "energy, CO2e and SCI count only what it meters"
    return f"📏 measured by {reading.source}, not the whole machine: {only}{note}"


def energy_line(energy: Energy, units: Units, verbose: bool = False) -> str:
    """The energy figures; `verbose`: with how they were obtained (the short footer says it once, below)."""
    if energy.total_j is None:
        return f"⚡ energy {source_label(energy)} · {sig(energy.seconds)} s"
    idle_w = energy.idle.watts if energy.idle else None
    avg_w = energy.avg_watts or 0.0  # known once total_j is
    short = short_window_note(energy)
    if units == "watts":
        band = None if energy.uncertainty_j is None else energy.uncertainty_j / energy.seconds
        above = "" if idle_w is None else f" ({sig(max(0.0, avg_w - idle_w))} W above {sig(idle_w)} W idle)"
        line = f"⚡ {sig(avg_w)}{plus_minus(band)} W avg over {sig(energy.seconds)} s{above}{short}"
        return f"{line} · {source_label(energy)}" if verbose else line
    if energy.includes_reload:
        short += f" · includes a model reload ({sig(energy.reload_s or 0.0)} s): not comparable"
    above = ""
    if energy.attributable_j is not None:
        above = f" ({sig(energy.attributable_j)}{plus_minus(energy.attributable_uncertainty_j)} J above idle)"
    line = f"⚡ {sig(energy.total_j)}{plus_minus(energy.uncertainty_j)} J total{above}{short}"
    line += f" · {sig(avg_w)} W avg over {sig(energy.seconds)} s"
    return f"{line} · {source_label(energy)}" if verbose else line


def energy_caveat(energy: Energy) -> str:
    """What the CO2e figure inherits from the energy figure it is computed from."""
    if energy.total_j is None:
        return ""
    if not energy.measured:
        return " (from estimated energy)"
    if energy.machine.scope != "machine":
        return " (from CPU+GPU energy only, not the whole machine)"
    return ""


def carbon_line(result: Result, verbose: bool = False) -> str:
    """CO2e, intensity and SCI, in one mass unit; `verbose`: each with its caveat, and the TE's source."""
    c = result.carbon
    mass = mass_unit([c.operational_g, c.sci_g, c.embodied_g])
    intensity = f"{sig(c.intensity.g_per_kwh)} g/kWh ({c.intensity.label()})"
    embodied = f"embodied {mass(c.embodied_g)}" + (f" ({c.embodied_source})" if verbose else "")
    if c.operational_g is None or c.sci_g is None:
        return f"🌍 CO2e unavailable (no energy figure) · {intensity} · {embodied}"
    if not verbose:
        return f"🌍 {mass(c.operational_g)} CO2e · {intensity} · SCI {mass(c.sci_g)}/answer ({embodied})"
    caveat = energy_caveat(result.energy)
    return f"🌍 {mass(c.operational_g)} CO2e{caveat} · {intensity} · SCI {mass(c.sci_g)}/answer{caveat} · {embodied}"


def model_line(result: Result) -> str:
    parts = [f"🤖 {result.model} ({result.model_size})", f"{result.completion_tokens} tokens"]
    if result.j_per_token is not None:
        parts.append(f"{sig(result.j_per_token)} J/token")
    warmup = result.warmup_energy
    if warmup is not None and warmup.total_j is not None:
        spent = f"{sig(warmup.total_j)}{plus_minus(warmup.uncertainty_j)} J"
        parts.append(f"loaded in {sig(result.load_s)} s and warmed up ({spent}) before this answer, not counted in it")
    return " · ".join(parts)


def context_cost(result: Result, what: str = "the context") -> str:
    """' · reading the context: 3.1 ± 0.4 J (41 %)': the prefill's share of the answer (or why not split)."""
    phases = result.energy.phases
    if phases is None:
        return ""
    if phases.prefill_j is None:
        return f" · reading {what}: not split ({phases.error})"
    share = "" if phases.prefill_share is None else f" ({phases.prefill_share * 100:.0f} %)"
    return f" · reading {what}: {sig(phases.prefill_j, 2)}{plus_minus(phases.prefill_uncertainty_j)} J{share}"


def images_line(result: Result) -> str | None:
    """What the model looked at, and what reading it cost: '🖼 1 image, 768×512 · reading the image and the
    prompt: 3.1 ± 0.4 J (41 %)' (the prefill: a vision model encodes its images while it reads the prompt)."""
    own, carried = result.request.images, result.context_images
    if not own and not carried:
        return None
    again = f"{_images(carried)} of this conversation" if carried else ""
    seen = " + ".join(filter(None, [images_label(own), again]))
    noun = "image" if result.image_count == 1 else "images"
    return ("" if own else "🖼 ") + seen + context_cost(result, f"the {noun} and the prompt")


def earlier_images_note(result: Result) -> str | None:
    """Once per conversation: the earlier questions' images the model did not see again, and why."""
    request = result.request
    if request.told_images_left_out:
        return None
    notes = []
    if request.images_not_kept:
        notes.append(f"{_images(request.images_not_kept)} not shown again: not kept (KEEP_IMAGES)")
    if result.dropped_images:
        notes.append(f"{_images(result.dropped_images)} left out: {result.dropped_images_because}")
    return "🖼 " + "; ".join(notes) if notes else None


def _images(n: int) -> str:
    return f"{n} earlier image{'s' if n > 1 else ''}"


def conversation_lines(result: Result) -> list[str]:
    """For a later turn: the context it carried (why it cost more), and once, what was forgotten."""
    lines = []
    if result.request.turn > 1:  # with images, what reading it all cost is on the images' line
        cost = "" if result.image_count else context_cost(result)
        lines.append(f"🧵 turn {result.request.turn} · {result.prompt_tokens:,} context tokens{cost}")
    if result.dropped_turns and not result.request.told_forgotten:
        lines.append(
            f"🧠 the start of this conversation no longer fits {result.model}'s context: "
            f"the first {result.dropped_turns} messages were left out"
        )
    if (note := earlier_images_note(result)) is not None:
        lines.append(note)
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


def zone_note(result: Result) -> str | None:
    """Under a user's first answer only, while GRID_ZONE is unset: which grid the CO2e used, and how to
    make it the box's own."""
    intensity = result.carbon.intensity
    if not (result.first_answer and intensity.zone_default):
        return None
    where = f"{intensity.zone}'s grid ({sig(intensity.g_per_kwh)} g/kWh)"
    return f"🗺️ the CO2e uses {where}, the default: set GRID_ZONE to where the box runs (e.g. GRID_ZONE=FR)"


def footer(result: Result, units: Units | None = None, public_url: str = "", verbose: bool = False) -> str:
    """The footer; `verbose`: the long form, each figure with how it was obtained."""
    lines = [note] if (note := ending_note(result)) else []
    lines += [energy_line(result.energy, units or result.request.units, verbose), carbon_line(result, verbose)]
    lines.append(model_line(result))
    if not verbose and (label := bill_label(result.energy)) is not None:
        lines.append(label)
    if (zone := zone_note(result)) is not None:
        lines.append(zone)
    if (seen := images_line(result)) is not None:  # answers with images cost more to read
        lines.append(seen)
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
