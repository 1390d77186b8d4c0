"""The machine-checkable reference of every shipped benchmark prompt.

One JSON Lines file per category (config/data/references/<category>.jsonl), one
object per line, matched to its prompt by the prompt's own text (so reordering
the prompt file changes nothing, and an edited prompt becomes "unscored" rather
than being checked against the wrong reference). A malformed line refuses the
whole file, naming the file and the line.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from joulebot.campaign.probes import probed
from joulebot.categories import CATEGORIES


class ReferenceError(ValueError):
    """A reference file that cannot be used; the message names the file and line."""


_Text = Annotated[str, Field(min_length=1)]


class _Reference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt: _Text


class MathReference(_Reference):
    """The answer's final number must be one of `answer` (± `tolerance`)."""

    answer: Annotated[list[float], Field(min_length=1)]
    tolerance: Annotated[float, Field(ge=0)] = 1e-6

    @field_validator("answer", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return [value] if isinstance(value, int | float) and not isinstance(value, bool) else value

    def example_answer(self) -> str:
        return f"The answer is {self.answer[0]:g}."


class SqlReference(_Reference):
    """The model's query must return the rows one of `queries` returns on the shipped database."""

    queries: Annotated[list[_Text], Field(min_length=1)]
    ordered: bool = False  # the prompt asks for an order (top 3, second page): rows compare in order

    def example_answer(self) -> str:
        return f"Here is the query:\n\n```sql\n{self.queries[0]}\n```\n\nIt returns the rows you asked for."


class CodeReference(_Reference):
    """The model's Python must define `name` (a function or a class) that passes every test.

    For kind "script" nothing is looked up: the tests read `printed`, what the code printed.
    Each comparison in a test's asserts has a literal side (probes.py): the expected values
    stay with the scorer. The operands of an assert are all evaluated, even after `and`.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z_]\w*$")]
    kind: Literal["function", "class", "script"] = "function"
    tests: Annotated[list[_Text], Field(min_length=1)]
    solution: _Text  # the project's own answer: must pass the tests

    @field_validator("tests", "solution")
    @classmethod
    def _compiles(cls, value: str | list[str]) -> str | list[str]:
        for source in [value] if isinstance(value, str) else value:
            try:
                compile(source, "<reference>", "exec")
            except SyntaxError as exc:
                raise ValueError(f"not valid Python: {exc.msg} in {source!r}") from None
        return value

    @field_validator("tests")
    @classmethod
    def _judged_outside(cls, tests: list[str]) -> list[str]:
        for test in tests:
            probed(test)  # ValueError: an assert comparing two computed values, or a test without an assert
        return tests

    def example_answer(self) -> str:
        return f"Sure:\n\n```python\n{self.solution}\n```\n"


class TranslationReference(_Reference):
    """Accepted translations; the answer's best chrF against them must reach the threshold."""

    references: Annotated[list[_Text], Field(min_length=1)]

    def example_answer(self) -> str:
        return f'The translation is: "{self.references[0]}"'


class QuestionReference(_Reference):
    """Groups of accepted variants: the answer must contain one variant of every group.

    A variant is matched as whole words, case and accents ignored; a trailing `*`
    makes it a prefix ("evaporat*" matches "evaporates").
    """

    accept: Annotated[list[Annotated[list[_Text], Field(min_length=1)]], Field(min_length=1)]

    def example_answer(self) -> str:
        return "In short: " + ", ".join(group[0].rstrip("*") for group in self.accept) + "."


Reference = MathReference | SqlReference | CodeReference | TranslationReference | QuestionReference
KINDS: dict[str, type[_Reference]] = {
    "math": MathReference,
    "sql": SqlReference,
    "code": CodeReference,
    "translation": TranslationReference,
    "questions": QuestionReference,
}


def shipped_directory() -> Path:
    return Path(str(resources.files("joulebot.config") / "data" / "references"))


def load_file(path: Path, category: str) -> dict[str, Reference]:
    """The references of one file, by prompt text; ReferenceError names the file and line of the first bad one."""
    kind = KINDS[category]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReferenceError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ReferenceError(f"{path}: not UTF-8 text") from None
    found: dict[str, Reference] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            reference = kind.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ReferenceError(f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno})") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise ReferenceError(f"{path}:{number}: {where}: {first['msg']}") from None
        if reference.prompt in found:
            raise ReferenceError(f"{path}:{number}: a second reference for the prompt {reference.prompt!r}")
        found[reference.prompt] = reference  # type: ignore[assignment]
    return found


def load_references(directory: Path | None = None) -> dict[str, dict[str, Reference]]:
    """Every category's references (a missing file means: that category is unscored)."""
    directory = directory or shipped_directory()
    if not directory.is_dir():
        raise ReferenceError(f"{directory}: not a folder of reference files")
    loaded = {}
    for category in CATEGORIES:
        path = directory / f"{category}.jsonl"
        loaded[category] = load_file(path, category) if path.exists() else {}
    return loaded
