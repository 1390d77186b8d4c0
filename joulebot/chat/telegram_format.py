"""Model output as Telegram HTML, split into messages Telegram accepts.

HTML parse mode needs only `<`, `>` and `&` escaped. Fenced code blocks become
`<pre><code>`, inline code `<code>`. Long texts are split at paragraph, then
line, then word boundaries; a split inside a block closes its tags and opens
them again in the next message, so every message is valid on its own and the
visible text is never changed.

A piece depends only on the markup up to its end, so while an answer streams in,
every piece but the last is already the piece the finished reply will have.
"""

from __future__ import annotations

import html
import re

LIMIT = 4096
_FENCE = re.compile(r"```([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_TAG = re.compile(r"<(/?)([a-z]+)([^>]*)>")


def _inline(text: str) -> str:
    out, last = [], 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[last : match.start()], quote=False))
        out.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        last = match.end()
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


def to_html(text: str) -> str:
    """Plain model output (Markdown-ish) to Telegram HTML."""
    out, last = [], 0
    for match in _FENCE.finditer(text):
        out.append(_inline(text[last : match.start()]))
        language, code = match.group(1), match.group(2).rstrip("\n")
        attribute = f' class="language-{html.escape(language)}"' if language else ""
        out.append(f"<pre><code{attribute}>{html.escape(code, quote=False)}</code></pre>")
        last = match.end()
    out.append(_inline(text[last:]))
    return "".join(out)


def visible_text(markup: str) -> str:
    """What Telegram shows for a piece of our HTML: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", markup))


def _safe_cut(markup: str, start: int, end: int) -> int:
    """The best place to cut markup[start:end]: after a blank line, a newline, a space, or anywhere
    that is not inside a tag or an entity."""
    window = markup[start:end]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        while at > 0:
            cut = start + at + len(separator)
            if _cuttable(markup, cut):
                return cut
            at = window.rfind(separator, 0, at)
    cut = end
    while cut > start + 1 and not _cuttable(markup, cut):
        cut -= 1
    return cut


def _cuttable(markup: str, cut: int) -> bool:
    before = markup[:cut]
    in_tag = before.rfind("<") > before.rfind(">")
    in_entity = before.rfind("&") > max(before.rfind(";"), before.rfind(" "), before.rfind("<"), before.rfind(">"))
    return not in_tag and not in_entity


def utf16_len(text: str) -> int:
    """Telegram's length: UTF-16 code units (a character outside the BMP, like most emoji, counts 2)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def split_html(markup: str, limit: int = LIMIT) -> list[str]:
    """Pieces of at most `limit` UTF-16 code units (Telegram's measure), each with balanced tags.

    The markup is measured, not the text it shows: tags and entities only ever shorten it."""
    pieces: list[str] = []
    open_tags: list[str] = []  # full opening tags, e.g. '<pre>', '<code class="language-py">'
    position = 0
    while position < len(markup):
        prefix = "".join(open_tags)
        reserve = len(prefix) + sum(len(_closing(t)) for t in open_tags) + 64  # tags opened inside the piece
        end = min(len(markup), position + limit - reserve)
        while (excess := utf16_len(markup[position:end]) - (limit - reserve)) > 0:
            end -= excess  # every character is at least one unit: this never overshoots
        cut = len(markup) if end == len(markup) else _safe_cut(markup, position, end)
        body = markup[position:cut]
        for match in _TAG.finditer(body):
            if match.group(1):
                if open_tags:
                    open_tags.pop()
            else:
                open_tags.append(match.group(0))
        suffix = "".join(_closing(t) for t in reversed(open_tags))
        pieces.append(prefix + body + suffix)
        position = cut
    return pieces


def _closing(opening: str) -> str:
    return f"</{_TAG.match(opening).group(2)}>"  # type: ignore[union-attr]


def partial_pieces(partial: str, status: str) -> list[str]:
    """The answer so far as Telegram messages: every full piece as the finished reply will show it
    (cut where `split_html` cuts the whole reply), then the growing last one with `status` under it
    (cut short with an ellipsis while it is too long to carry the status line)."""
    *done, growing = split_html(to_html(partial)) or [""]
    line = html.escape(status, quote=False)
    shown = split_html(growing, LIMIT - utf16_len(line) - 4) or [""]  # 4: the ellipsis' line and the blank line
    more = "\n…" if len(shown) > 1 else ""
    return [*done, f"{shown[0]}{more}\n\n{line}"]
