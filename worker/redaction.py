"""Credentials out of anything shown: URLs in errors, log lines, CLI output and status lines.

The one function every place that shows a URL (or a message that may quote one) goes
through, so a password in DATABASE_URL, CELERY_BROKER_URL or a market's base URL never
reaches a terminal, a log file or a scan's stored error.
"""

from __future__ import annotations

import re

PLACEHOLDER = "***"
# scheme://[user]:password@ — the password is everything up to the last '@' of the authority
# (passwords may hold '@' when not percent-encoded), and never crosses '/', space or quotes.
# An empty password (`postgres:@`) has nothing to hide and is left as it is.
_USERINFO = re.compile(
    r"""(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@'"]*)"""  # scheme://user
    r""":(?P<password>[^\s/'"]+)@"""  # :password@
    r"""(?=[^\s@'"]*(?:[\s/'"]|$))"""  # host: no further '@' before the path
)


def redacted(text: str) -> str:
    """`text` with the password of every `scheme://user:password@host` replaced by ***."""
    return _USERINFO.sub(lambda match: f"{match['head']}:{PLACEHOLDER}@", text)
