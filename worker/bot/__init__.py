"""`marketscan bot`: the Telegram bot that starts, steers and follows scans from a chat."""
