"""Attachments on Discord messages and the `/ask` image option, fetched from Discord's CDN and read
as attachments. Counts and sizes are checked from what Discord says before anything is fetched."""

from __future__ import annotations

import asyncio

import discord

from joulebot.attachments.images import check_count, check_size, image_limits, read_images
from joulebot.attachments.parts import Attached, AttachmentError
from joulebot.attachments.text_files import check_file_size, read_text_file
from joulebot.config import Settings


async def attachments_of(attachments: list[discord.Attachment], settings: Settings) -> Attached:
    """Images (by their content type) and text files, read and checked; AttachmentError (one line) if not."""
    limits = image_limits(settings)
    images = [a for a in attachments if (a.content_type or "").startswith("image/")]
    files = [a for a in attachments if a not in images]
    check_count(len(images), limits)
    for image in images:
        check_size(image.filename, image.size, limits)
    for file in files:
        check_file_size(file.filename, file.size, settings.max_file_chars)
    fetched = [(image.filename, await _read(image)) for image in images]
    texts = [read_text_file(f.filename, await _read(f), settings.max_file_chars) for f in files]
    return Attached(images=await asyncio.to_thread(read_images, fetched, limits), files=texts)


async def _read(attachment: discord.Attachment) -> bytes:
    try:
        return await attachment.read()
    except discord.HTTPException as exc:
        raise AttachmentError(f"{attachment.filename} could not be fetched from Discord ({exc.status})") from None
