"""Replies as Discord messages that respect every limit.

Model output goes into embed descriptions (4096 each), our footer into the
embed footer (2048) of the answer's last embed, headings into titles (256);
a message holds at most 10 embeds and 6000 characters of embed text, and
its content at most 2000. Long answers continue in further messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONTENT = 2000
DESCRIPTION = 4096
FOOTER = 2048
TITLE = 256
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL = 6000


@dataclass
class Embed:
    description: str
    title: str = ""
    footer: str = ""

    def size(self) -> int:
        return len(self.description) + len(self.title) + len(self.footer)


@dataclass
class Message:
    content: str = ""
    embeds: list[Embed] = field(default_factory=list)


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut after a blank line, a newline or a space
    where possible; joined together they are the text again."""
    pieces = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n") + 2, 0)
        if cut < limit // 2:
            cut = max(window.rfind("\n") + 1, window.rfind(" ") + 1)
        if cut < limit // 4:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return pieces


def render(answers: list[tuple[str, str, str]], closing: str = "") -> list[Message]:
    """(title, answer, footer) per answer, and a closing line (the energy ratio of a comparison)."""
    embeds: list[Embed] = []
    for title, answer, footer in answers:
        pieces = split_text(answer or "(empty answer)", DESCRIPTION)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            embeds.append(
                Embed(
                    description=piece,
                    title=title[:TITLE] if index == 0 else "",
                    footer=footer[:FOOTER] if last else "",
                )
            )
    messages: list[Message] = [Message()]
    for embed in embeds:
        current = messages[-1]
        full = len(current.embeds) == EMBEDS_PER_MESSAGE
        if full or sum(e.size() for e in current.embeds) + embed.size() > EMBED_TOTAL:
            messages.append(Message())
        messages[-1].embeds.append(embed)
    if closing:
        messages[-1].content = closing[:CONTENT]
    return messages


def close_fences(text: str) -> str:
    """An answer cut mid-way (while it streams) with its open code block closed, so it renders as one."""
    return text + "\n```" if text.count("```") % 2 else text


def render_partial(answer: str, status: str) -> Message:
    """The answer so far, as one message: its first embed (longer answers continue in the final reply)."""
    first = split_text(answer, DESCRIPTION - 8)[0]
    more = "\n…" if len(first) < len(answer) else ""
    return Message(embeds=[Embed(description=close_fences(first) + more, footer=status)])
