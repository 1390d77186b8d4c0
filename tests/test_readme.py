import re
from pathlib import Path

import pytest
from factories import make_result
from testenv import run_cli

from joulebot.carbon import Embodied, IntensityProvider, carbon_for
from joulebot.chat.footer import footer
from joulebot.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
CI_RUN = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
# The README's first example: the command, the answer, and the footer under it
EXAMPLE = re.search(
    r'```\n\$ joulebot ask "(?P<prompt>[^"]+)"\n(?P<answer>.+?)\n\n(?P<footer>⚡.+?)\n```', README, re.S
)


def shape(text: str) -> str:
    """A footer without its figures: the words, units, signs and order the code prints (a line's masses in g
    or mg, whichever reads better at their size)."""
    return re.sub(r"# mg\b", "# g", re.sub(r"\d+(?:\.\d+)*", "#", text))


@pytest.mark.unit
def test_every_setting_is_in_the_configuration_table():
    for name, field in Settings.model_fields.items():
        variable = field.alias or name.upper()
        assert f"| `{variable}` |" in README, f"{variable} is not documented in README.md"


@pytest.mark.unit
def test_ci_runs_exactly_the_readme_test_command():
    command = next(line for line in CI_RUN.splitlines() if line.startswith("python3 -m venv"))
    assert f"```sh\n{command}\n```" in README


@pytest.mark.unit
def test_the_readme_footer_has_the_shape_the_code_prints():
    """The first answer on a fresh install, with no meter: an estimate, and no idle baseline yet."""
    assert EXAMPLE, "README.md has no `joulebot ask` example with a footer"
    first = make_result(idle_w=None, total_j=5.0, seconds=0.3, answer=EXAMPLE["answer"], prompt=EXAMPLE["prompt"])
    unconfigured = Settings(_env_file=None)  # nothing set: the placeholder TE, the default grid zone
    intensity = IntensityProvider.from_settings(unconfigured).current()
    first.carbon = carbon_for(5.0, 0.3, intensity, Embodied.from_settings(unconfigured))
    first.first_answer = True  # the history was empty
    assert shape(EXAMPLE["footer"]) == shape(footer(first))


@pytest.mark.e2e
def test_the_readme_example_is_what_the_shipped_model_says(embedded):
    """The README's transcript is the shipped model's answer with its shipped settings (llama.cpp's seed
    is fixed), printed by the real command on a fresh home, and its footer has the printed shape."""
    proc = run_cli(embedded, "ask", EXAMPLE["prompt"])
    assert proc.returncode == 0, proc.stderr
    answer, _, printed = proc.stdout.rstrip("\n").rpartition("\n\n")
    assert answer == EXAMPLE["answer"]
    assert shape(printed) == shape(EXAMPLE["footer"])
