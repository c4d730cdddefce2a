"""QR codes for enrolment, drawn on the server by segno (the only module that imports it).

The picture is an SVG ``data:`` URI: no external service sees the secret, no script is needed,
and the Content-Security-Policy (``img-src 'self' data:``) allows it.
"""

from __future__ import annotations

import io

import segno


def svg_data_uri(text: str) -> str:
    """A QR code of ``text`` as an ``data:image/svg+xml`` URI (medium error correction)."""
    return str(segno.make(text, error="m", micro=False).svg_data_uri(scale=5, border=4))


def terminal(text: str) -> str:
    """A QR code of ``text`` drawn with block characters, for a terminal (the CLI's bootstrap)."""
    out = io.StringIO()
    segno.make(text, error="m", micro=False).terminal(out=out, compact=True, border=2)
    return out.getvalue()
