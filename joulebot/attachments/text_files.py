"""Text files as context: UTF-8 text becomes part of the user's message, under its name.

Binary files and text in other encodings are refused rather than guessed at: a model given
mojibake answers about mojibake, and the bill would be for that.
"""

from __future__ import annotations

import re

from joulebot.attachments.parts import AttachmentError, TextFile

UTF8_MAX_BYTES_PER_CHAR = 4
FIRST_FILE = '\n\n<file name="'
# One block `with_files` wrote, ending where the next block or the text ends
FILE_BLOCK = re.compile(r'\n\n<file name="(?P<name>[^\n]*)">\n(?P<text>.*?)\n</file>(?=\n\n<file name="|\Z)', re.DOTALL)


def check_file_size(name: str, size: int, max_chars: int) -> None:
    """Before downloading: a file that cannot be MAX_FILE_CHARS of UTF-8 or fewer is refused."""
    if size > max_chars * UTF8_MAX_BYTES_PER_CHAR:
        raise AttachmentError(f"{name} is {size:,} bytes; text files are taken up to {max_chars:,} characters")


def read_text_file(name: str, raw: bytes, max_chars: int) -> TextFile:
    """The file's text; AttachmentError (one line) for binary, non-UTF-8 or too long."""
    check_file_size(name, len(raw), max_chars)
    if b"\x00" in raw:
        raise AttachmentError(f"{name} is a binary file; joulebot takes UTF-8 text files and images")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AttachmentError(
            f"{name} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and send it again"
        ) from None
    if len(text) > max_chars:
        raise AttachmentError(f"{name} has {len(text):,} characters; text files are taken up to {max_chars:,}")
    return TextFile(name=name, text=text)


def with_files(prompt: str, files: list[TextFile]) -> str:
    """The user's message with each file after it, named, so the model can tell them apart."""
    blocks = [f'<file name="{f.name}">\n{f.text.rstrip()}\n</file>' for f in files]
    return "\n\n".join([prompt, *blocks])


def split_files(message: str) -> tuple[str, list[TextFile]]:
    """`with_files` undone: a stored message's own words and the files after them (none: all words).

    A retry asks the stored message again; its files count against MAX_FILE_CHARS, not against the
    MAX_PROMPT_CHARS of the words typed with them."""
    start = message.find(FIRST_FILE)
    while start != -1:
        files, at = [], start
        while (block := FILE_BLOCK.match(message, at)) is not None:
            files.append(TextFile(name=block["name"], text=block["text"]))
            at = block.end()
        if files and at == len(message) and with_files(message[:start], files) == message:
            return message[:start], files
        start = message.find(FIRST_FILE, start + 1)
    return message, []
