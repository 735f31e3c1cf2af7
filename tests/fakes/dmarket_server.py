"""The loopback DMarket the tests fake the market with: the package's, shared with bench/."""

from worker.testing.dmarket_server import (
    FakeDMarket,
    FakeFees,
    FakeReducedFee,
    Quirk,
    RecordedRequest,
    ScriptedReply,
    TotalFormat,
    dmarket_item,
    requests_over_rate,
)

__all__ = [
    "FakeDMarket",
    "FakeFees",
    "FakeReducedFee",
    "Quirk",
    "RecordedRequest",
    "ScriptedReply",
    "TotalFormat",
    "dmarket_item",
    "requests_over_rate",
]
