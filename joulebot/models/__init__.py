"""The model catalog and the runners that execute a prompt. Nothing here measures."""

from joulebot.models.catalog import Catalog, ModelEntry, ModelUnavailable, UnknownModelError, build_catalog
from joulebot.models.runner import Generation, Runner, RunnerError

__all__ = [
    "Catalog",
    "Generation",
    "ModelEntry",
    "ModelUnavailable",
    "Runner",
    "RunnerError",
    "UnknownModelError",
    "build_catalog",
]
