"""Stand-ins for what tests and the bench take away: the outside world as real HTTP servers
on loopback (DMarket, the Telegram Bot API) and memory stubs of the plug-in families (the
page store, a reference source). They ship with the package, as dramatiq's stub broker
does, so the bench and other projects' tests can use them; no runtime module imports them
(an import-linter contract in pyproject.toml says so)."""
