"""The DMarket adapter: its listing as a market source (market.py), every request through one
transport (transport.py: budgets, the signature of auth.py, the breaker, the body read within
response_body.py), and the readers of its answers, each value held to a bound (bounds.py):
the v1 market items (v1_items.py) and the v2 offers (v2_offers.py)."""
