"""The catalog as this box can serve it now: the static list merged with the Ollama server's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from joulebot.config import Settings
from joulebot.models.catalog import Catalog, build_catalog
from joulebot.models.runner import RunnerError

if TYPE_CHECKING:
    from joulebot.models.ollama_runner import OllamaRunner


def ollama_runner(settings: Settings) -> OllamaRunner | None:
    if not settings.ollama_host:
        return None
    from joulebot.models.ollama_runner import OllamaRunner  # the HTTP client only where Ollama is used

    return OllamaRunner(
        settings.ollama_host, settings.ollama_keep_alive, float(settings.job_timeout_s), redact=settings.redact
    )


def current_catalog(settings: Settings, runner: OllamaRunner | None = None) -> Catalog:
    runner = runner or ollama_runner(settings)
    limit, tuned = settings.max_model_params_b, settings.generation_settings
    if runner is None:
        return build_catalog(limit, generation=tuned)
    try:
        return build_catalog(limit, runner.inventory(), generation=tuned)
    except RunnerError as exc:
        return build_catalog(limit, None, str(exc), generation=tuned)
