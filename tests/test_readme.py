from pathlib import Path

from joulebot.config import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
CI_RUN = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()


def test_every_setting_is_in_the_configuration_table():
    for name, field in Settings.model_fields.items():
        variable = field.alias or name.upper()
        assert f"| `{variable}` |" in README, f"{variable} is not documented in README.md"


def test_ci_runs_exactly_the_readme_test_command():
    command = next(line for line in CI_RUN.splitlines() if line.startswith("python3 -m venv"))
    assert f"```sh\n{command}\n```" in README
