"""How a model picks each next token: the sampling settings of a catalog entry (or of GENERATION_SETTINGS).

A setting left out is the runner's own default (llama-cpp-python's, or the Ollama server's and the
model's Modelfile). The settings decide what a small model says: SmolLM2-135M with llama.cpp's
defaults loops on "What is the capital of France?"; with a repeat penalty it answers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenerationSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=5)  # 0: greedy, always the likeliest token
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)  # 0: no limit
    repeat_penalty: float | None = Field(default=None, gt=0, le=5)  # 1: none

    def given(self) -> dict[str, float | int]:
        """The settings that are set, by the names both llama.cpp and Ollama's `options` use."""
        return self.model_dump(exclude_none=True)

    def over(self, defaults: GenerationSettings) -> GenerationSettings:
        """These settings, and `defaults` where these leave one out."""
        return defaults.model_copy(update=self.given())

    def tag(self) -> str:
        """'temperature=0.2 top_p=0.95 top_k=40 repeat_penalty=1.1': what history records with each answer,
        so that statistics never pool answers made with different settings ('' = the server's defaults)."""
        return " ".join(f"{name}={value:g}" for name, value in self.given().items())
