"""The suite's own settings: what keeps it deterministic on a loaded machine."""

from __future__ import annotations

import pytest
from hypothesis import settings


class TestSuiteSettings:
    def test_property_tests_have_no_deadline(self) -> None:
        """Hypothesis runs under the suite's profile: a slow example is not a failure."""
        assert settings().deadline is None

    def test_pytest_config_is_strict(self, pytestconfig: pytest.Config) -> None:
        """Unknown configuration keys fail the run, and an xfail that passes is a failure."""
        assert pytestconfig.getini("xfail_strict") is True
        assert pytestconfig.option.strict_config is True
