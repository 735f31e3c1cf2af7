"""Values and rules with no I/O: status and its transitions, the checkpoint snapshot and
its validators, scan params, the page message, progress and totals, the arbitrage rule."""
