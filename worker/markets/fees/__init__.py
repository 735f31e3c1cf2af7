"""Sell fees, what a find's profit is net of: the family's protocol (source.py), DMarket's
published fees (dmarket.py) behind the fleet's cache (cache.py), the one configured fee and
the simulated market's table (configured.py), and the source a scan's params name
(registry.py)."""
