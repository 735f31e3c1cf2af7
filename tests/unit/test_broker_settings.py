"""The Sentinel master's name and the ledger audit's bound, read once from the environment."""

from __future__ import annotations

import pytest

from worker.errors import ConfigError
from worker.settings import Settings


def test_the_sentinel_master_and_the_audit_bound_have_defaults_and_can_be_set() -> None:
    assert (Settings.from_env({}).sentinel_master, Settings.from_env({}).ledger_audit_seconds) == (
        "mymaster",
        300.0,
    )
    chosen = Settings.from_env(
        {"MARKETSCAN_SENTINEL_MASTER": "prod", "MARKETSCAN_LEDGER_AUDIT_SECONDS": "60"}
    )
    assert (chosen.sentinel_master, chosen.ledger_audit_seconds) == ("prod", 60.0)


def test_an_audit_bound_below_a_second_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="MARKETSCAN_LEDGER_AUDIT_SECONDS"):
        Settings.from_env({"MARKETSCAN_LEDGER_AUDIT_SECONDS": "0"})
