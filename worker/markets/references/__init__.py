"""Reference prices, what a page's listings are judged against: the family's protocol and the
listing's own suggested price (source.py), DMarket's best bid and last sales (best_bid.py,
last_sales.py) behind the fleet's cache (cache.py), the source a scan's params name
(registry.py), and a market whose pages come priced (priced_market.py)."""
