"""The attachment data that crosses the queue inside a Request, and the one-line refusal."""

from __future__ import annotations

from pydantic import BaseModel


class AttachmentError(ValueError):
    """An attachment joulebot will not send to a model; `str()` is one line for the user."""


class ImageInput(BaseModel):
    """One image as the model receives it: re-encoded by joulebot, metadata gone.

    History keeps `sha256`, `size_bytes` and the dimensions, never `data`.
    """

    name: str
    data: str  # base64 of the normalised bytes (Ollama's `images` on the user's message)
    media_type: str  # "image/jpeg" or "image/png"
    width: int
    height: int
    size_bytes: int  # of the normalised image
    sha256: str  # of the normalised image
    source_format: str  # the format the bytes really were ("JPEG", "PNG", "WEBP", ...)
    downscaled: bool = False

    def dimensions(self) -> str:
        return f"{self.width}×{self.height}"


class TextFile(BaseModel):
    """A UTF-8 text file the user attached: it becomes part of the question, under its name."""

    name: str
    text: str


class Attached(BaseModel):
    """What came with one message besides its text, already read and checked."""

    images: list[ImageInput] = []
    files: list[TextFile] = []


def as_stored(images: list[dict] | None) -> list[ImageInput]:
    """The images history says a question had (`exchanges.images`): what each was, without its pixels."""
    return [ImageInput.model_validate({**image, "data": ""}) for image in images or []]


def default_question(attached: Attached) -> str:
    """What a message that carries attachments but no words asks."""
    if attached.images:
        return "Describe this image." if len(attached.images) == 1 else "Describe these images."
    return "Summarise this file."


def images_label(images: list[ImageInput]) -> str:
    """What was looked at, for a footer: "🖼 1 image, 768×512" ("" without images)."""
    if not images:
        return ""
    noun = "image" if len(images) == 1 else "images"
    return f"🖼 {len(images)} {noun}, {', '.join(image.dimensions() for image in images)}"
