"""The rules every market call of the fleet keeps, whichever market it asks: request budgets
shared through the broker's Redis (budget.py), the circuit breaker kept there too
(breaker.py), the wait before a retry (backoff.py), and the HTTP clients and budget handles
one process keeps for all its calls (process_clients.py)."""
