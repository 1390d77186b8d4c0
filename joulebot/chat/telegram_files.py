"""Photos, image documents and text documents sent to the Telegram bot, fetched through the Bot API's
upload flow (the message's file ids, `getFile`, then the file's download path) and read as attachments.

Sizes are checked from what the update says before anything is downloaded: a 50 MB document costs
one line, not 50 MB. Pillow's work runs in a thread, off the bot's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from telegram import Bot, Message, PhotoSize
from telegram.error import TelegramError

from joulebot.attachments.images import ImageLimits, check_count, check_size, image_limits, read_images
from joulebot.attachments.parts import Attached, AttachmentError
from joulebot.attachments.text_files import check_file_size, read_text_file
from joulebot.config import Settings, SettingsError


def file_base_url(settings: Settings) -> str:
    """TELEGRAM_FILE_BASE_URL, or the API's base with its `…/bot` made `…/file/bot` (as Telegram's are)."""
    if settings.telegram_file_base_url:
        return settings.telegram_file_base_url
    api = settings.telegram_api_base_url.rstrip("/")
    if not api.endswith("/bot"):
        raise SettingsError("TELEGRAM_FILE_BASE_URL must be set when TELEGRAM_API_BASE_URL does not end in /bot")
    return api[: -len("bot")] + "file/bot"


def carries_attachment(message: Message) -> bool:
    return bool(message.photo or message.document)


async def attachments_of(messages: Sequence[Message], settings: Settings) -> Attached:
    """The photos and documents of a message (or of an album's messages, together), downloaded and read;
    AttachmentError (one line) when refused. An album's images count together against MAX_IMAGES,
    before any is downloaded."""
    limits = image_limits(settings)
    check_count(sum(bool(m.photo) or _is_image(m.document.mime_type if m.document else None) for m in messages), limits)
    parts = [await _attachment_of(message, settings, limits) for message in messages]
    return Attached(images=[i for part in parts for i in part.images], files=[f for part in parts for f in part.files])


async def _attachment_of(message: Message, settings: Settings, limits: ImageLimits) -> Attached:
    """One message's photo or document."""
    bot = message.get_bot()
    if message.photo:
        size = _largest_fitting(message.photo, limits.max_bytes)
        raw = await _download(bot, size.file_id, "the photo")
        return Attached(images=await asyncio.to_thread(read_images, [("photo.jpg", raw)], limits))
    document = message.document
    if document is None:
        return Attached()
    name = document.file_name or "document"
    if _is_image(document.mime_type):
        check_size(name, document.file_size or 0, limits)
        raw = await _download(bot, document.file_id, name)
        return Attached(images=await asyncio.to_thread(read_images, [(name, raw)], limits))
    check_file_size(name, document.file_size or 0, settings.max_file_chars)
    raw = await _download(bot, document.file_id, name)
    return Attached(files=[read_text_file(name, raw, settings.max_file_chars)])


def _is_image(mime_type: str | None) -> bool:
    return (mime_type or "").startswith("image/")


def _largest_fitting(sizes: tuple[PhotoSize, ...], max_bytes: int) -> PhotoSize:
    """Telegram sends each photo in several sizes: the largest within MAX_IMAGE_BYTES (the model's
    pixel budget is applied after), else the smallest, which the byte check then refuses."""
    by_area = sorted(sizes, key=lambda s: s.width * s.height)
    fitting = [s for s in by_area if (s.file_size or 0) <= max_bytes]
    return fitting[-1] if fitting else by_area[0]


async def _download(bot: Bot, file_id: str, what: str) -> bytes:
    try:
        telegram_file = await bot.get_file(file_id)
        return bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:  # its text can hold the download URL, and the URL holds the token
        raise AttachmentError(f"{what} could not be fetched from Telegram ({type(exc).__name__})") from None
