"""A Result as OpenAI's chat completion, with the bill: the standard fields the SDKs parse, and inside
`usage` (where clients that log usage keep it) the energy, the carbon and the SCI with the same
provenance and caveats as the footer; beside it a `joulebot` object (box, why, exchange, trimming).

An estimate says it is one (`measured: false`, `label`), total and above-idle are separate fields,
every energy figure carries its ± (None where unknown), and the intensity its provenance."""

from __future__ import annotations

import time
from typing import Any

from joulebot.chat.footer import energy_caveat, footer, source_label
from joulebot.exchange import Request, Result
from joulebot.metering import Energy

FINISH_REASONS = ("stop", "length")


def completion_id(request: Request) -> str:
    return f"chatcmpl-{request.id}"


def energy_bill(energy: Energy) -> dict[str, Any]:
    reading = energy.machine
    return {
        "total_j": energy.total_j,
        "total_uncertainty_j": energy.uncertainty_j,
        "above_idle_j": energy.attributable_j,
        "above_idle_uncertainty_j": energy.attributable_uncertainty_j,
        "idle_w": energy.idle.watts if energy.idle else None,
        "seconds": energy.seconds,
        "source": reading.source,
        "scope": reading.scope,  # machine (at the wall), or the components metered
        "measured": energy.measured,  # false: an estimate, never a measurement
        "method": reading.method,
        "notes": [n for n in (reading.note, reading.error) if n],
        "short_window": energy.short_window,  # under ten of the meter's update periods
        "includes_reload": energy.includes_reload,  # a model reload inside the window: not comparable
        # reading the prompt and generating apart (each ±), or why the window was not split
        "phases": energy.phases.model_dump() if energy.phases else None,
        "label": source_label(energy),  # the footer's words for all of the above
    }


def carbon_bill(result: Result) -> dict[str, Any]:
    c = result.carbon
    return {
        "co2e_g": c.operational_g,
        "intensity_g_per_kwh": c.intensity.g_per_kwh,
        "zone": c.intensity.zone,
        "zone_default": c.intensity.zone_default,  # GRID_ZONE unset: the shipped default, not the box's grid
        "provenance": c.intensity.provenance,  # live, cached or static
        "intensity_label": c.intensity.label(),
        "caveat": energy_caveat(result.energy).strip(" ()") or None,  # what the CO2e inherits from the energy
    }


def sci_bill(result: Result) -> dict[str, Any]:
    c = result.carbon
    return {
        "g_per_answer": c.sci_g,  # (E × I + M) per R, R = one answer
        "embodied_g": c.embodied_g,
        "embodied_source": c.embodied_source,
        "caveat": energy_caveat(result.energy).strip(" ()") or None,
    }


def usage(result: Result) -> dict[str, Any]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
        "energy": energy_bill(result.energy),
        "carbon": carbon_bill(result),
        "sci": sci_bill(result),
    }


def joulebot_object(result: Result, public_url: str) -> dict[str, Any]:
    routing = result.routing
    warmup = result.warmup_energy
    return {
        "box": result.box,
        "why": routing.reason if routing else "the one measurement box",
        "routing": routing.model_dump(mode="json") if routing else None,
        "exchange_id": result.exchange_id,
        "history_error": result.history_error,
        "context_turns": result.context_turns,  # earlier turns the model received
        "dropped_turns": result.dropped_turns,  # earlier turns left out: they did not fit the context window
        "category": result.category,
        "load_s": result.load_s,  # before the window, not in the bill
        "warmup_j": warmup.total_j if warmup is not None else None,  # likewise
        "hint": result.hint,
        "footer": footer(result, public_url=public_url),
    }


def finish_reason(result: Result) -> str:
    return result.finish_reason if result.finish_reason in FINISH_REASONS else "stop"


def completion(result: Result, public_url: str) -> dict[str, Any]:
    return {
        "id": completion_id(result.request),
        "object": "chat.completion",
        "created": int(result.started_at.timestamp()),
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.answer},
                "finish_reason": finish_reason(result),
            }
        ],
        "usage": usage(result),
        "joulebot": joulebot_object(result, public_url),
    }


def chunk(request: Request, model: str, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": completion_id(request),
        "object": "chat.completion.chunk",
        "created": int(request.created_at.timestamp()) or int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def usage_chunk(result: Result, public_url: str) -> dict[str, Any]:
    """The last chunk with `stream_options.include_usage`: no choices, the whole bill."""
    body = chunk(result.request, result.model, {})
    body["choices"] = []
    body["usage"] = usage(result)
    body["joulebot"] = joulebot_object(result, public_url)
    return body
