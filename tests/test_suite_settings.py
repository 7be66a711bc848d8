"""The suite's own settings: what keeps it deterministic on a loaded machine, and strict."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent


def project_pytest_config() -> dict[str, object]:
    """The project's ``[tool.pytest.ini_options]``, as pyproject.toml states it."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return dict(tomllib.load(file)["tool"]["pytest"]["ini_options"])


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_pytest_with(directory: Path, options: dict[str, object], test: str) -> str:
    """Run pytest in ``directory`` on one test module under ``options``; its output."""
    lines = ["[tool.pytest.ini_options]"]
    lines += [
        f"{key} = {toml_value(value)}" for key, value in options.items() if key != "testpaths"
    ]
    (directory / "pyproject.toml").write_text("\n".join(lines) + "\n")
    (directory / "test_probe.py").write_text(test)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


class TestPytestSettings:
    def test_an_unknown_config_key_fails_the_run(self, tmp_path: Path) -> None:
        """--strict-config is in effect: a misspelt setting is an error, not ignored."""
        options = project_pytest_config() | {"xfail_strikt": True}
        del options["testpaths"]
        output = run_pytest_with(tmp_path, options, "def test_nothing():\n    pass\n")
        assert output.startswith("exit 4"), output
        assert "xfail_strikt" in output

    def test_an_xfail_that_passes_fails_the_run(self, tmp_path: Path) -> None:
        """xfail_strict is in effect: a known gap that got fixed must lose its marker."""
        test = "import pytest\n\n@pytest.mark.xfail(reason='a gap')\ndef test_fixed():\n    pass\n"
        options = project_pytest_config()
        del options["testpaths"]
        output = run_pytest_with(tmp_path, options, test)
        assert output.startswith("exit 1"), output
        assert "XPASS(strict)" in output

    def test_this_run_has_both(self, pytestconfig: pytest.Config) -> None:
        """The run these tests are part of reads the same settings."""
        assert pytestconfig.getini("xfail_strict") is True
        assert pytestconfig.option.strict_config is True
        assert pytestconfig.option.strict_markers is True


class TestHypothesisProfiles:
    def test_no_setting_depends_on_the_machines_speed(self) -> None:
        """The profile in effect has no deadline and no health check of speed or of the size
        of a draw: a loaded machine cannot fail a property test."""
        current = settings()
        assert current.deadline is None
        assert HealthCheck.too_slow in current.suppress_health_check
        assert HealthCheck.data_too_large in current.suppress_health_check

    def test_the_ci_profile_repeats_its_examples(self) -> None:
        """Under CI=true (or HYPOTHESIS_PROFILE=ci) a red run repeats exactly."""
        ci = settings.get_profile("ci")
        assert ci.derandomize is True
        assert ci.deadline is None
        assert HealthCheck.too_slow in ci.suppress_health_check
