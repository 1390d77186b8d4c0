"""The model catalog and the runners that execute a prompt. Nothing here measures."""

from joulebot.models.catalog import ModelEntry, UnknownModelError, available_models, resolve_model
from joulebot.models.runner import Generation, Runner, RunnerError

__all__ = [
    "Generation",
    "ModelEntry",
    "Runner",
    "RunnerError",
    "UnknownModelError",
    "available_models",
    "resolve_model",
]
