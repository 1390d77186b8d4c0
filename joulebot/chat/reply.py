"""A reply as every chat platform shows it: each answer with its footer, then (for a comparison)
the energy ratio or an error; the platform modules only render these texts."""

from __future__ import annotations

from dataclasses import dataclass

from joulebot.chat.footer import energy_ratio, footer
from joulebot.exchange import Result, Units


@dataclass
class Answer:
    title: str  # "A: model" in a comparison, else empty
    text: str  # the model's output: untrusted, Markdown-ish
    footer: str


@dataclass
class Reply:
    answers: list[Answer]
    closing: str = ""  # the energy ratio of a comparison, or an error

    def parts(self) -> list[tuple[str, bool]]:
        """(text, is_model_output) in reading order, for platforms that render one text."""
        parts: list[tuple[str, bool]] = []
        for answer in self.answers:
            if answer.title:
                parts.append((answer.title, False))
            parts += [(answer.text, True), (answer.footer, False)]
        if self.closing:
            parts.append((self.closing, False))
        return parts


def make_reply(results: list[Result], units: Units, public_url: str = "", budget: list[str] | None = None) -> Reply:
    """`budget`: the asker's use of their daily energy budgets (`EnergyBudgets.day_lines`), under the last footer."""
    compare = len(results) > 1
    answers = [
        Answer(f"{tag}: {r.model}" if compare else "", r.answer or "(empty answer)", footer(r, units, public_url))
        for tag, r in zip("AB", results, strict=False)
    ]
    if budget and answers:
        answers[-1].footer = "\n".join([answers[-1].footer, *budget])
    return Reply(answers, energy_ratio(results[0], results[1]) if compare else "")
