"""Storage URLs: which storage a run uses, passwords kept out of every message, and the local
file a URL names."""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_STORAGE = "qg-studies.journal"
STORAGE_VARIABLE = "QG_STORAGE"  # names the storage when none is given: no password in argv
_QUERY_PASSWORD = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)([^&]*)")


def _credentials(url: str) -> tuple[str, str, str | None, str] | None:
    """``(scheme, user, password, rest)`` of ``scheme://user:password@rest``, split at the
    *last* ``@`` (a password may hold ``:``, ``/`` or ``@``); ``None`` without ``://``/``@``."""
    scheme, sep, after = url.partition("://")
    if not sep or "@" not in after:
        return None
    userinfo, _, rest = after.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return scheme, user, password if colon else None, rest


def _mask(url: str) -> str:
    """``url`` with its password as ``***``: all between the user name and the last ``@``, and
    a ``password=`` query value. Never fails, whatever the URL looks like."""
    masked = _QUERY_PASSWORD.sub(r"\1***", url)
    parts = _credentials(masked)
    if parts and parts[2] is not None:
        scheme, user, _, rest = parts
        masked = f"{scheme}://{user}:***@{rest}"
    elif "://" not in masked and "@" in masked:  # not a URL (a typo?): hide all before the '@'
        masked = "***@" + masked.rpartition("@")[2]
    return masked


def _secrets(url: str) -> list[str]:
    """The password(s) in ``url``, as written and percent-decoded, longest first."""
    from urllib.parse import unquote

    parts = _credentials(url)
    found = [parts[2]] if parts and parts[2] else []
    found += [match.group(2) for match in _QUERY_PASSWORD.finditer(url)]
    return sorted({text for raw in found for text in (raw, unquote(raw)) if text}, key=len)[::-1]


def _scrub(text: str, url: str) -> str:
    """``text`` (a parser's or driver's message) with every password in ``url`` as ``***``."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def storage_url(url: str | os.PathLike | None = None) -> str:
    """``url`` itself when given, else ``$QG_STORAGE`` when set, else ``qg-studies.journal``.

    Args:
        url: the storage given, or ``None``.

    Returns:
        The storage's URL or path.
    """
    if url is not None and str(url):
        return str(url)
    return os.environ.get(STORAGE_VARIABLE, "").strip() or DEFAULT_STORAGE


def _local_file(url: str) -> Path | None:
    """The file a journal path or a ``sqlite:///`` URL names; ``None`` for other storages (and
    for an in-memory SQLite database)."""
    if url.endswith(".journal"):
        return Path(url).expanduser()
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+")[0] == "sqlite" and not _in_memory(url):
        return Path(rest[1:].split("?")[0]).expanduser()
    return None


def _in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] != "sqlite":
        return False
    name = rest[1:].split("?")[0] if rest.startswith("/") else rest.split("?")[0]
    return name in ("", ":memory:") or "mode=memory" in rest
