"""Telling a scan's user how it goes: the notifier, its Telegram client and messages."""
