"""Showing connection strings without their secrets: the one home of URL masking.

Every message, header line and database column that names a Redis server or a results
database goes through :func:`mask_url`. It understands

- URLs (``redis://``, ``rediss://``, ``unix://``, ``postgresql://``, ``sqlite:///`` …):
  the password of the userinfo (which may itself hold ``@``, ``/``, ``?`` or ``#``: the
  host starts after the *last* ``@``), a userinfo without ``:`` (a password written in
  the user's place), and query parameters that carry a secret (``password=``,
  ``sslpassword=`` …);
- PostgreSQL conninfo strings (``host=h user=u password='p w' sslpassword=x``).

Nothing here imports the drivers: callers of every layer may use it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

#: Query / conninfo parameters whose value is a secret (compared case-insensitively).
SECRET_KEYS = frozenset(
    {"password", "sslpassword", "passwd", "pass", "pwd", "secret", "token", "auth"}
)
MASK = "***"

_CONNINFO = re.compile(
    r"(?i)(?P<key>\b(?:" + "|".join(sorted(SECRET_KEYS)) + r"))(?P<eq>\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'?|[^\s&;]*)"
)


def mask_url(url: str) -> str:
    """``url`` with every credential replaced by ``***`` (see the module docstring).

    ``redis://user:pw@host/0`` -> ``redis://user:***@host/0``;
    ``redis://:Pa55#w0rd@h:6391/0`` -> ``redis://:***@h:6391/0``;
    ``postgresql://u@h/db?sslpassword=x`` -> ``postgresql://u@h/db?sslpassword=***``;
    ``host=h password=x`` -> ``host=h password=***``.
    """
    parts = _split(url)
    if parts is None:
        return _mask_conninfo(url)
    scheme, userinfo, rest = parts
    shown_user = ""
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        shown_user = (f"{user}:{MASK}" if colon else MASK) + "@"
    location, question, query = rest.partition("?")
    if question:
        query = _mask_query(query)
    return f"{scheme}://{shown_user}{location}{question}{query}"


def _split(url: str) -> tuple[str, str | None, str] | None:
    """(scheme, userinfo or None, the rest after the userinfo) of a URL; None when
    ``url`` is not one (a path or a conninfo string).

    ``urllib`` ends the authority at the first ``/``, ``?`` or ``#``, which a password
    may contain; the userinfo therefore ends at the last ``@`` before the query (or,
    when the query itself is ambiguous, the last ``@`` of all), and ``urlsplit`` checks
    that what follows is a URL of that scheme.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return None
    at = rest.rfind("@")
    userinfo: str | None = None
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
    try:
        urlsplit(f"{scheme}://{rest}")
    except ValueError:  # e.g. an invalid IPv6 host: show the text, masked as conninfo
        return scheme, userinfo, _mask_conninfo(rest)
    return scheme, userinfo, rest


def _mask_query(query: str) -> str:
    """A URL query with the values of secret parameters masked (order, separators and
    encoding of everything else kept; a ``#`` belongs to the value before it)."""
    pieces = re.split(r"([&;])", query)
    for i in range(0, len(pieces), 2):
        name, eq, _ = pieces[i].partition("=")
        if eq and unquote(name).strip().lower() in SECRET_KEYS:
            pieces[i] = f"{name}={MASK}"
    return "".join(pieces)


def _mask_conninfo(text: str) -> str:
    """``key=value`` pairs (libpq conninfo, a query outside a URL) with secrets masked."""
    return _CONNINFO.sub(lambda m: f"{m['key']}{m['eq']}{MASK}", text)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def mask_text(text: str) -> str:
    """``text`` (a label such as ``redis redis://:pw@h/0``) with every URL in it and every
    ``password=``-style pair masked."""
    return _mask_conninfo(_URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text))


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error message, say) with ``url``, its password and any
    conninfo secret masked: drivers sometimes quote the URL or the password."""
    text = text.replace(url, mask_url(url))
    for secret in _secrets(url):
        if len(secret) > 2:
            text = text.replace(secret, MASK)
    return _mask_conninfo(text)


def needs_quoting(url: str) -> bool:
    """Whether the password of ``url`` holds a character (``# ? / @``) that drivers which
    parse URLs with ``urllib`` take as a delimiter: it must be percent-encoded."""
    parts = _split(url)
    if parts is None or parts[1] is None:
        return False
    return any(c in parts[1].partition(":")[2] for c in "#?/@")


def _secrets(url: str) -> set[str]:
    """Every secret written in ``url``: the userinfo's password (raw and decoded) and
    the values of secret parameters."""
    found: set[str] = set()
    parts = _split(url)
    if parts is not None:
        _, userinfo, rest = parts
        if userinfo is not None:
            user, colon, password = userinfo.partition(":")
            value = password if colon else user
            # a driver that splits the URL itself at # ? / quotes pieces of the password
            found |= {value, unquote(value), *re.split(r"[#?/@:]", value)}
        query = rest.partition("?")[2]
    else:
        query = url
    for m in _CONNINFO.finditer(query):
        value = m["value"]
        found |= {value, value.strip("'"), unquote(value)}
    return {s for s in found if s}
