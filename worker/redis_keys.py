"""Every key marketscan keeps in the broker's Redis beside Celery's messages, by prefix.

Deployed data lives under these names: a changed prefix strands what is stored under the
old one (open breakers, budget windows, ledger markers, a scan's Telegram message), so a
prefix never changes. Each module that keeps state in Redis builds its keys from its prefix
here, and no other module spells one (tests/integration/test_redis_keys.py pins them).
"""

from __future__ import annotations

from typing import Final

# worker.chain.broker_ledger: where each scan's last page message is, `<prefix><scan id>`.
LEDGER_PREFIX: Final = "marketscan:queued:"
# worker.markets.fleet.budget: a request budget's window, pause, counter and priority waiters
# per market API.
BUDGET_PREFIX: Final = "marketscan:budget:"
# worker.markets.fleet.breaker: a market's failures, open state and probe.
BREAKER_PREFIX: Final = "marketscan:breaker:"
# worker.markets.references.cache: a title's reference price, and its lookup's claim.
REFERENCE_PREFIX: Final = "marketscan:reference:"
# worker.markets.fees.cache: a market's fee table, and the claim to fetch it.
FEE_PREFIX: Final = "marketscan:fee:"
# worker.markets.second_market.cache: a second market's whole price list per scope
# (each read's hash of titles, the pointer to the newest), the claim to fetch it and the note
# of a fetch that failed.
PRICE_LIST_PREFIX: Final = "marketscan:pricelist:"
# worker.notify.messages: a scan's Telegram message, its edit throttle, a chat's backoff.
TELEGRAM_PREFIX: Final = "marketscan:telegram:"
# worker.notify.alerts: a chat's and the bot's send slots, the finds alerted recently, and
# each watch pass's send lock.
ALERT_PREFIX: Final = "marketscan:alert:"
# worker.markets.fresh.shared_walk: the newest walk of a listing, and the claim to walk it.
FRESH_WALK_PREFIX: Final = "marketscan:fresh:"
# worker.metrics.events: the fleet's metric notes, one hash.
METRIC_NOTES_KEY: Final = "marketscan:metrics:notes"
# worker.metrics.presence: the processes alive, one sorted set by last announcement.
PRESENCE_KEY: Final = "marketscan:metrics:presence"
