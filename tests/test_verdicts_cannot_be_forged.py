"""The code checker's verdict comes from the scorer comparing the values an answer computed with
expected values that never enter the sandbox: an answer that forges instead of computing is
wrong (or unscored), never right."""

from __future__ import annotations

import json

import pytest

from joulebot.campaign.checkers import check_code
from joulebot.campaign.probes import probed
from joulebot.campaign.references import CodeReference, load_references

pytestmark = pytest.mark.usefixtures("bwrap_here")
REVERSE = load_references()["code"]["Write a Python function that reverses a string."]
IS_EVEN = load_references()["code"]["Write a Python function that checks whether a number is even."]


def test_writing_a_verdict_on_every_descriptor_is_not_a_verdict():
    forged = json.dumps({"passed": 2, "note": "2/2 tests pass"}) + "\n"
    answer = f"""```python
import os, sys
for fd in {{int(a) for a in sys.argv[1:2] if a.isdigit()}} | set(range(1, 20)):
    try:
        os.write(fd, {forged.encode()!r})
    except OSError:
        pass
print({forged!r})
os._exit(0)
```"""
    verdict = check_code(REVERSE, answer)
    assert verdict.correct is not True, verdict.note


def test_writing_the_sandboxs_own_records_still_needs_the_right_values():
    """A forger that knows the record format must still know the expected values, which it never sees."""
    answer = """```python
import json, os, sys
fd = int(sys.argv[1])
for test, value in ((0, "joule"), (1, "")):
    os.write(fd, (json.dumps({"test": test, "assert": 0, "values": [value]}) + "\\n").encode())
    os.write(fd, (json.dumps({"test": test, "done": True}) + "\\n").encode())
os._exit(0)
```"""
    verdict = check_code(REVERSE, answer)
    assert verdict.correct is not True, verdict.note


def test_reading_the_expected_values_from_the_callers_frames_finds_none():
    answer = r"""```python
import re, sys

def reverse_string(s):
    texts, frame = [], sys._getframe(1)
    while frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            texts += [v if isinstance(v, str) else repr(v) for v in list(scope.values())]
        frame = frame.f_back
    found = re.findall(r"reverse_string\('joule'\) == '(\w+)'", "\n".join(texts))
    return found[0] if s and found else s
```"""
    verdict = check_code(REVERSE, answer)
    assert verdict.correct is False, verdict.note
    assert verdict.note.startswith("1/2 tests pass")


@pytest.mark.parametrize(
    "fake",
    [
        "class Fake:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__",
        "class Fake(str):\n    def __eq__(self, other):\n        return True\n    __hash__ = str.__hash__",
        "class Fake(list):\n    def __eq__(self, other):\n        return True",
        "class Fake:\n    __class__ = property(lambda self: str)\n    def __eq__(self, other):\n        return True",
    ],
    ids=["object", "str-subclass", "list-subclass", "forged-class"],
)
def test_a_value_equal_to_everything_equals_nothing(fake):
    answer = f"```python\n{fake}\n\ndef reverse_string(s):\n    return Fake() if s else 'not empty'\n```"
    verdict = check_code(REVERSE, answer)
    assert verdict.correct is False, verdict.note
    assert verdict.note.startswith("0/2 tests pass")


def test_subclasses_of_plain_types_travel_as_what_they_hold():
    """An honest answer may return an IntEnum or a defaultdict: compared by value, as Python would."""
    signal = load_references()["code"][
        "Write a Python function that returns the signal number of a segmentation fault in a C program."
    ]
    assert check_code(
        signal, "```python\nimport signal\n\ndef segfault_signal():\n    return signal.SIGSEGV\n```"
    ).correct
    counts = CodeReference(
        prompt="p", name="f", tests=["assert f() == {'a': 2}"], solution="def f():\n    return {'a': 2}"
    )
    answer = "```python\nfrom collections import defaultdict\n\ndef f():\n    d = defaultdict(int)\n    d['a'] += 2\n"
    answer += "    return d\n```"
    assert check_code(counts, answer).correct is True


def test_a_value_whose_truth_follows_the_order_of_the_tests_is_neither_true_nor_false():
    answer = """```python
looks = []

class Shifty:
    def __bool__(self):
        looks.append(1)
        return len(looks) <= 2  # the tests ask: even, even, odd, odd

def is_even(n):
    return Shifty()
```"""
    verdict = check_code(IS_EVEN, answer)
    assert verdict.correct is False and verdict.note.startswith("0/3 tests pass"), verdict.note


def test_plain_values_of_every_shape_compare_as_in_python():
    shapes = CodeReference(
        prompt="p",
        name="f",
        tests=[
            "assert f()[0] == (1, 2.5) and f()[1] == {'a': [b'x', None]} and f()[2] == {3, 4}",
            "assert f()[3] is True and f()[4] > 1e308",  # float('inf') travels as a float
            "assert 2 < f()[5] <= 3 and 'x' in f()[6] and 7 not in f()[0]",
        ],
        solution="def f():\n    return [(1, 2.5), {'a': [b'x', None]}, {3, 4}, True, float('inf'), 3, ['x']]",
    )
    assert check_code(shapes, shapes.example_answer()).correct is True
    wrong = "```python\ndef f():\n    return [[1, 2.5], {'a': [b'y', None]}, {3}, 1, 0.0, 2, []]\n```"
    verdict = check_code(shapes, wrong)
    assert verdict.correct is False and verdict.note.startswith("0/3 tests pass"), verdict.note


@pytest.mark.unit
def test_a_reference_assert_comparing_two_computed_values_is_refused():
    """Both sides would be computed where the answer's code could change them (say, by replacing `sorted`)."""
    with pytest.raises(ValueError, match="compare with a literal"):
        probed("assert f([2, 1]) == sorted([2, 1])")
    assert probed("assert f(2) == 4 and not g() and h() in (1, 2)").source == "_probe(0, (f(2), g(), h()))"
    with pytest.raises(ValueError, match="compare with a literal"):
        CodeReference(
            prompt="p", name="f", tests=["assert f() == sorted([2, 1])"], solution="def f():\n    return [1, 2]"
        )
