"""Credentials out of anything shown: URLs in errors, log lines, CLI output and status lines.

The one function every place that shows a URL (or a message that may quote one) goes
through, so a password in DATABASE_URL, CELERY_BROKER_URL or a market's base URL never
reaches a terminal, a log file, a scan's stored error or a Telegram message.
"""

from __future__ import annotations

import re

PLACEHOLDER = "***"
# scheme://[user]:password@host. PostgreSQL and SQLAlchemy take a password unencoded, so it
# may hold '@', '/', quotes and even spaces: it runs to the last '@' that a host follows,
# looked for first within the URL's own word (no space), then, for a password with a space,
# on along the line, unless what follows the ':' is a port (digits, then a space or a path:
# `http://host:8080 refused ... @someone` holds no password). Never across another URL's
# "://", so two URLs in one line stay two.
# Hiding too much (an e-mail address later on the line) is the price of hiding all of it.
# An empty password (`postgres:@`) has nothing to hide and is left as it is.
_USERINFO = re.compile(
    r"""(?P<head>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@'"]*)"""  # scheme://user
    r""":(?P<password>(?:(?!://)\S)+|(?!\d+(?:[\s/]|$))(?:(?!://)[^\r\n])+)@"""  # :password@
    r"""(?=[^\s@/?#'"]*(?:[\s/?#'"]|$))"""  # host: no further '@' before the path
)
# ?password=... or &password=... (libpq and redis-py read a URL's password there too), up
# to the next parameter; a quote that closes the quoted URL is kept.
_PASSWORD_PARAMETER = re.compile(
    r"""(?P<head>[?&](?:password|passwd|pwd)=)[^&#\s]+?(?=['"]?(?:[&#\s]|$))""", re.IGNORECASE
)
# A Telegram bot token (`<bot id>:<secret>`), as the Bot API's URLs carry it.
_BOT_TOKEN = re.compile(r"(?<![0-9])[0-9]{5,}:[A-Za-z0-9_-]{30,}")


def redacted(text: str) -> str:
    """`text` with every URL's password (in its userinfo or a `password` query parameter)
    and every Telegram bot token replaced by ***."""
    text = _USERINFO.sub(lambda match: f"{match['head']}:{PLACEHOLDER}@", text)
    text = _PASSWORD_PARAMETER.sub(lambda match: f"{match['head']}{PLACEHOLDER}", text)
    return _BOT_TOKEN.sub(PLACEHOLDER, text)
