"""Values that come in from outside, checked before anything else reads them.

Two checks every entry point shares (pages, protocol endpoints, the console, the CLI):

- ``is_identifier``: what may name a client, an account, a username, an organisation or a key
  before the name reaches a database query. Visible ASCII only, at most ``MAX_IDENTIFIER``
  characters: no NUL (PostgreSQL refuses it outright, which surfaced as a server error), no
  whitespace, no control or non-ASCII look-alike. Nothing Hawiya issues or registers is outside it.
- ``parse_json``: JSON from a request (the ``claims`` parameter, a client assertion's payload, a
  passkey's credential), bounded in size and nesting depth before it is decoded, so a value nested
  a thousand levels deep is a refusal with a reason, never a ``RecursionError``.

This module is a leaf: it imports nothing from the rest of Hawiya.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: The longest identifier accepted (client ids, usernames, account and organisation ids, kids).
MAX_IDENTIFIER = 255
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_IDENTIFIER)  # noqa: UP031 - a regex quantifier

#: Inbound JSON: the largest document and the deepest nesting accepted.
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 16
#: Strings are skipped whole (a bracket inside one is not nesting); then only brackets count.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def is_identifier(value: object) -> bool:
    """True when ``value`` may name something Hawiya looks up: a string of 1 to MAX_IDENTIFIER
    visible ASCII characters (``fullmatch``: a trailing newline is not allowed either)."""
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def identifier_or_none(value: object) -> str | None:
    """``value`` when it is an identifier (see ``is_identifier``), else None: for recording what a
    caller claimed (an audit row) without recording what a database would refuse."""
    return value if isinstance(value, str) and is_identifier(value) else None


class InvalidJson(ValueError):
    """Inbound JSON refused: not JSON, too large or nested too deeply. The message says which
    (safe to show: it never quotes the value)."""


def json_depth(text: str) -> int:
    """How deeply ``text`` nests arrays and objects (0 for a scalar), counted without decoding."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def check_json_bounds(
    raw: str | bytes, *, what: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> str:
    """``raw`` as text once it is known to be at most ``max_bytes`` long and nested at most
    ``max_depth`` deep (whether it is JSON at all is the decoder's business); InvalidJson
    otherwise. ``what`` names the value in the message."""
    if len(raw) > max_bytes:
        raise InvalidJson(f"{what} is too large (at most {max_bytes} bytes)")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJson(f"{what} is not UTF-8") from None
    if json_depth(raw) > max_depth:
        raise InvalidJson(f"{what} is nested too deeply (at most {max_depth} levels)")
    return raw


def parse_json(
    raw: str | bytes, *, what: str, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """``raw`` decoded, once ``check_json_bounds`` let it through; InvalidJson otherwise."""
    text = check_json_bounds(raw, what=what, max_bytes=max_bytes, max_depth=max_depth)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidJson(f"{what} is not JSON") from None
