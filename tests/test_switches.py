"""The CRS_REQUIRE_* switches mean what they say: 0 is off, 1 is on, a typo is an error."""

from __future__ import annotations

import pytest

from tests.conftest import missing, switch


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("YES", True), ("on", True),
                                           ("0", False), ("false", False), ("no", False), ("", False)])
def test_switch_values(monkeypatch: pytest.MonkeyPatch, value: str, on: bool) -> None:
    monkeypatch.setenv("CRS_REQUIRE_DATA", value)
    assert switch("CRS_REQUIRE_DATA") is on


def test_an_unset_switch_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRS_REQUIRE_BROWSER", raising=False)
    assert switch("CRS_REQUIRE_BROWSER") is False


def test_a_mistyped_switch_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRS_REQUIRE_SERVICES", "maybe")
    with pytest.raises(pytest.UsageError, match="CRS_REQUIRE_SERVICES='maybe'"):
        switch("CRS_REQUIRE_SERVICES")


def test_zero_skips_and_one_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRS_REQUIRE_DATA", "0")
    with pytest.raises(pytest.skip.Exception, match="no data here"):
        missing("DATA", "no data here")
    monkeypatch.setenv("CRS_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="no data here"):
        missing("DATA", "no data here")
