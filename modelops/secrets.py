"""Secrets in specs and outputs: which URLs are secrets, and the one way to mask them.

An http(s) URL may carry a credential (webhook endpoints of notification channels often
do, in their path or user part). Every such URL is a secret unless its host is loopback
(the emulator's own addresses); the host is the parsed one, so
``https://localhost:x@hooks.example.com/…`` is a secret of hooks.example.com.

Example::

    mask("POST https://hooks.example.com/T0/B1 failed")   # 'POST https://**** failed'
    is_secret_url("https://127.0.0.1:4566/")               # False
"""

from __future__ import annotations

import re
from typing import Any, Iterator
from urllib.parse import urlsplit

__all__ = ["MASK", "URL", "is_secret_url", "mask", "secret_urls"]

#: what a secret URL is shown as, everywhere
MASK = "https://****"
#: a URL in running text (up to a space, quote, bracket or comma)
URL = re.compile(r"https?://[^\s'\"<>,}\]|]+", re.IGNORECASE)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_secret_url(value: Any) -> bool:
    """Whether ``value`` is an http(s) URL to a non-loopback host (or one that does not parse)."""
    if not isinstance(value, str) or not value[:8].lower().startswith(("http://", "https://")):
        return False
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        return True  # a URL no parser agrees on is treated as the secret it may be
    return host not in _LOOPBACK or parts.username is not None or parts.password is not None


def mask(text: str) -> str:
    """``text`` with every secret URL in it replaced by :data:`MASK`."""
    if "://" not in text:
        return text
    return URL.sub(lambda m: MASK if is_secret_url(m.group(0)) else m.group(0), text)


def secret_urls(value: Any) -> Iterator[str]:
    """Every secret URL held in plain data (whole strings, and URLs inside strings)."""
    if isinstance(value, str):
        if is_secret_url(value):
            yield value
        if "://" in value:
            for found in URL.findall(value):
                if found != value and is_secret_url(found):
                    yield found
    elif isinstance(value, dict):
        for item in value.values():
            yield from secret_urls(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from secret_urls(item)
