"""Helpers that both the test suite and the bench use: real Celery subprocesses and the
loopback DMarket.

They live in the package, not in tests/, so bench/ never imports the tests.
"""
