"""The parameters of a scan: validated once at start, stored in the row, read by every page."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from worker.domain.appraisal import Illiquid, appraise, opportunity_of
from worker.domain.evidence import Evidence
from worker.domain.fees import FeeTable
from worker.domain.listing import GAME_IDS, MAX_PAGE_SIZE, Item, lock_of
from worker.domain.opportunities import Level, Opportunity, level_named
from worker.domain.reference import (
    BEST_BID,
    DMARKET_API_OPTION,
    LAST_SALES,
    REFERENCE_KINDS,
    dmarket_api_of,
    reference_for,
)
from worker.domain.validation import (
    finite_number_of,
    metadata_of,
    operation_type_of,
    price_cents_of,
    user_id_of,
)
from worker.errors import InvalidInput

if TYPE_CHECKING:
    from worker.settings import Settings

MARKETS = ("simulated", "dmarket")
DEFAULT_USER_ID = 0
PARAMS_VERSION = 1
DEFAULT_FEE = 0.07
# A fresh scan polls DMarket's v2 offers, the listing that sorts by creation time.
FRESH_API = "v2"
MIN_POLL_SECONDS = 1
MAX_POLL_SECONDS = 3600
# Frozen from the worker's configuration when a scan starts; a request may not set them.
CONFIGURED_FIELDS = {
    "fee": "MARKETSCAN_FEE",
    "fee_source": "MARKETSCAN_FEE",
    "level_rule": "MARKETSCAN_LEVELS",
}
# Where a scan's fees come from (worker.markets.fees.registry).
FEE_SOURCE_DMARKET = "dmarket"
FEE_SOURCE_CONFIGURED = "configured"
FEE_SOURCE_KINDS = (FEE_SOURCE_DMARKET, FEE_SOURCE_CONFIGURED)


@dataclass(frozen=True)
class ScanParams:
    """Everything a page task needs to continue a scan exactly as it began."""

    game: str
    market: str = "simulated"
    level: str = "standard"
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    page_size: int = MAX_PAGE_SIZE
    user_id: int = DEFAULT_USER_ID
    operation_type: str = "market_scan"
    fee: float = DEFAULT_FEE
    metadata: dict[str, Any] = field(default_factory=dict)
    market_options: dict[str, Any] = field(default_factory=dict)
    # The level's band and minimum profit as configured when the scan started; None only in
    # rows stored before levels were configuration (they use the default levels).
    level_rule: Level | None = None
    # What listings are judged against (worker.domain.reference); frozen at start to the
    # market's default when not asked for. None only in rows stored before references were
    # a choice: they judge against the listing's own (suggested) price.
    reference: str | None = None
    # A fresh watch's one long-lived scan (worker.markets.fresh): it follows the market's
    # newest listings from `fresh_since` (RFC 3339), polling every `poll_every_seconds`.
    fresh: bool = False
    poll_every_seconds: int | None = None
    fresh_since: str | None = None
    # Where a find's fee comes from, frozen at start: `dmarket` (DMarket's published fees,
    # worker.markets.fees) unless the operator set MARKETSCAN_FEE (`configured`: `fee`).
    # None only in rows stored before fees were looked up (they use `fee`).
    fee_source: str | None = None

    def __post_init__(self) -> None:
        if self.game not in GAME_IDS:
            raise InvalidInput(f"game must be one of {', '.join(GAME_IDS)}, got {self.game!r}")
        if self.market not in MARKETS:
            raise InvalidInput(f"market must be one of {', '.join(MARKETS)}, got {self.market!r}")
        self._check_level()
        for name in ("min_price_cents", "max_price_cents"):
            price_cents_of(name, getattr(self, name))
        if (
            self.min_price_cents is not None
            and self.max_price_cents is not None
            and self.min_price_cents > self.max_price_cents
        ):
            raise InvalidInput(
                f"min price ({self.min_price_cents} cents) must not exceed max price "
                f"({self.max_price_cents} cents)"
            )
        if (
            isinstance(self.page_size, bool)
            or not isinstance(self.page_size, int)
            or not 1 <= self.page_size <= MAX_PAGE_SIZE
        ):
            raise InvalidInput(
                f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {self.page_size!r}"
            )
        user_id_of(self.user_id)
        operation_type_of(self.operation_type)
        finite_number_of("fee", self.fee, minimum=0, below=1)
        object.__setattr__(self, "metadata", metadata_of(self.metadata))
        if self.reference is not None and self.reference not in REFERENCE_KINDS:
            raise InvalidInput(
                f"reference must be one of {', '.join(REFERENCE_KINDS)}, got {self.reference!r}"
            )
        if not isinstance(self.market_options, dict):
            raise InvalidInput("market_options must be an object of KEY: VALUE")
        # Market-specific options are checked by the market itself (worker.markets.registry).
        self._check_fresh()
        if self.fee_source is not None and self.fee_source not in FEE_SOURCE_KINDS:
            raise InvalidInput(
                f"fee_source must be one of {', '.join(FEE_SOURCE_KINDS)}, got {self.fee_source!r}"
            )

    def _check_fresh(self) -> None:
        if not isinstance(self.fresh, bool):
            raise InvalidInput(f"fresh must be true or false, got {self.fresh!r}")
        if not self.fresh:
            if self.poll_every_seconds is not None or self.fresh_since is not None:
                raise InvalidInput("poll_every_seconds and fresh_since: only a fresh scan has them")
            return
        every = self.poll_every_seconds
        if (
            isinstance(every, bool)
            or not isinstance(every, int)
            or not MIN_POLL_SECONDS <= every <= MAX_POLL_SECONDS
        ):
            raise InvalidInput(
                f"poll_every_seconds must be a whole number from {MIN_POLL_SECONDS} to "
                f"{MAX_POLL_SECONDS}, got {every!r}"
            )
        if self.fresh_since is None:
            return  # a watch's request: each start freezes the moment it began
        try:
            since = datetime.fromisoformat(str(self.fresh_since))
        except ValueError:
            since = None
        if not isinstance(self.fresh_since, str) or since is None or since.tzinfo is None:
            raise InvalidInput(
                f"fresh_since must be a time with its zone (RFC 3339), got {self.fresh_since!r}"
            )

    def _check_level(self) -> None:
        if not isinstance(self.level, str) or not self.level:
            raise InvalidInput(f"level must be a level's name, got {self.level!r}")
        rule = self.level_rule
        if isinstance(rule, dict):
            try:
                rule = Level(**rule)
            except TypeError:
                raise InvalidInput(
                    "level_rule must be an object of name, min_price_cents, max_price_cents "
                    f"and min_profit, got {rule!r}"
                ) from None
            object.__setattr__(self, "level_rule", rule)
        if rule is not None and (not isinstance(rule, Level) or rule.name != self.level):
            raise InvalidInput(f"level_rule must be the rule of level {self.level!r}, got {rule!r}")

    def configured(self, settings: Settings) -> ScanParams:
        """These params with the worker's fee, level rule, reference and (on DMarket) listing
        API frozen in, as every start does; InvalidInput if the market cannot give the
        reference asked for."""
        options = self.market_options
        api = settings.dmarket_api
        if self.market == "dmarket":
            api = dmarket_api_of(options.get(DMARKET_API_OPTION, api))
            options = {**options, DMARKET_API_OPTION: api}
        if self.fresh and (self.market, api) != ("dmarket", FRESH_API):
            shown = f"dmarket with api {api}" if self.market == "dmarket" else self.market
            raise InvalidInput(
                f"--fresh: only market dmarket with api {FRESH_API} lists offers by creation "
                f"time (orderBy=createdAt), which a fresh watch follows; got market {shown}"
            )
        published = self.market == "dmarket" and not settings.fee_configured
        return replace(
            self,
            fee=settings.fee,
            fee_source=FEE_SOURCE_DMARKET if published else FEE_SOURCE_CONFIGURED,
            level_rule=level_named(self.level, settings.levels),
            reference=reference_for(self.reference, self.market, api),
            market_options=options,
        )

    def same_request(self, other: ScanParams) -> bool:
        """Whether `other` asks for the same scan, whatever the configuration froze in."""
        reference = other.reference if self.reference is None else self.reference
        options = self.market_options
        if DMARKET_API_OPTION in other.market_options and DMARKET_API_OPTION not in options:
            options = {**options, DMARKET_API_OPTION: other.market_options[DMARKET_API_OPTION]}
        frozen = replace(
            self,
            fee=other.fee,
            fee_source=other.fee_source,
            level_rule=other.level_rule,
            reference=reference,
            market_options=options,
        )
        return frozen == other

    # Cached: judge reads both for every listing, and a scan's params never change (frozen).
    @cached_property
    def rule(self) -> Level:
        return self.level_rule if self.level_rule is not None else level_named(self.level)

    @cached_property
    def price_band(self) -> tuple[int, int]:
        """The level's band narrowed by the scan's own min and max price."""
        level = self.rule
        low = max(level.min_price_cents, self.min_price_cents or 0)
        high = min(level.max_price_cents, self.max_price_cents or level.max_price_cents)
        return low, high

    @property
    def min_profit(self) -> float:
        return self.rule.min_profit

    def judge(self, item: Item) -> Opportunity | Illiquid | None:
        """The opportunity `item` offers under this scan's level, band, fees, liquidity
        minimums and lock rule (worker.domain.appraisal); Illiquid for a candidate that
        failed the liquidity minimums; None otherwise."""
        low, high = self.price_band
        if not low <= item.price_cents <= high:
            return None
        evidence = item.evidence
        if evidence is None:
            evidence = self._evidence_of(item) if item.reference is not None else self._own

        locked, lock_days = lock_of(item)
        judged_kind = self.reference if item.reference is None else item.reference.kind
        appraisal = appraise(
            title=item.title,
            price_cents=item.price_cents,
            judged_kind=judged_kind,
            listed_reference_cents=item.reference_price_cents,
            evidence=evidence,
            rule=self.rule,
            locked=locked,
            lock_days=lock_days,
        )
        if appraisal is None or isinstance(appraisal, Illiquid):
            return appraisal
        return opportunity_of(item, judged_kind, appraisal)

    @cached_property
    def _own(self) -> Evidence:
        """The evidence of a listing judged against its own figure (the simulated market,
        DMarket v1's suggested price) with the configured fee: one for every listing."""
        return Evidence(None, None, FeeTable.configured(self.fee, fetched_at=0.0), now=0.0)

    def _evidence_of(self, item: Item) -> Evidence:
        """What a listing without looked-up evidence is judged with: its own reference and
        the scan's configured fee (the simulated market, DMarket v1's suggested price)."""
        reference = item.reference
        return Evidence(
            best_bid=reference if reference is not None and reference.kind == BEST_BID else None,
            last_sales=(
                reference if reference is not None and reference.kind == LAST_SALES else None
            ),
            fees=FeeTable.configured(self.fee, fetched_at=0.0),
            now=0.0,
        )

    def to_json(self) -> dict[str, Any]:
        return {"version": PARAMS_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: object) -> ScanParams:
        """Params from a task argument or a stored row; unknown fields are refused by name."""
        if not isinstance(data, dict):
            raise InvalidInput(f"scan params must be a JSON object, got {type(data).__name__}")
        fields = dict(data)
        version = fields.pop("version", PARAMS_VERSION)
        if version != PARAMS_VERSION:
            raise InvalidInput(f"scan params version must be {PARAMS_VERSION}, got {version!r}")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise InvalidInput(
                f"unknown scan parameter {unknown[0]!r}: allowed are {', '.join(sorted(allowed))}"
            )
        if "game" not in fields:
            raise InvalidInput("scan params must include game")
        return cls(**fields)

    @classmethod
    def from_request(cls, data: object) -> ScanParams:
        """Params a caller asks for (the start task's argument): configured fields refused."""
        if isinstance(data, dict):
            for name, variable in CONFIGURED_FIELDS.items():
                if name in data:
                    raise InvalidInput(
                        f"{name} is the worker's configuration ({variable}), not a scan "
                        f"parameter: leave it out"
                    )
        return cls.from_json(data)


def frozen_fee(params: dict[str, Any] | None) -> float:
    """The fee a stored scan judged with, read from its params as they are stored (what its
    opportunities' fee and profit are derived from); the default for rows without one."""
    fee = (params or {}).get("fee", DEFAULT_FEE)
    return float(fee)
