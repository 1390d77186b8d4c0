"""An answer as the web chat shows it: text escaped, fenced code blocks in <pre><code> coloured by
Pygments (which only splits the code into tokens: nothing from the model runs or is interpreted), and
`inline code` marked. Nothing else of markdown or HTML is honoured: a model's `<script>` is text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

# ```lang (anything after the language on that line is ignored) … ``` — an unclosed block runs to the end
FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$\n?|\Z)", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")  # spans with classes: the stylesheet colours them


def _lexer(language: str) -> Lexer:
    try:
        return get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        return TextLexer()


def _code(language: str, code: str) -> str:
    label = escape(language or "code")
    coloured = highlight(code, _lexer(language.lower()), FORMATTER)  # Pygments escapes the code it formats
    return f'<pre class="code" data-language="{label}"><code>{coloured}</code></pre>'


def _prose(text: str) -> str:
    parts, last = [], 0
    for match in INLINE.finditer(text):
        parts.append(str(escape(text[last : match.start()])))
        parts.append(f"<code>{escape(match.group(1))}</code>")
        last = match.end()
    parts.append(str(escape(text[last:])))
    return f'<p class="prose">{"".join(parts)}</p>' if "".join(parts).strip() else ""


def answer_html(text: str) -> Markup:
    """The answer's HTML: everything of the model's escaped."""
    out, last = [], 0
    for match in FENCE.finditer(text):
        out.append(_prose(text[last : match.start()]))
        out.append(_code(match.group(1), match.group(2)))
        last = match.end()
    out.append(_prose(text[last:]))
    return Markup("".join(out))  # every piece above is escaped, or Pygments' escaped output
