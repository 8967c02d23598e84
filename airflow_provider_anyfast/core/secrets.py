"""Every form in which a token can come back in a body, so it can be scrubbed in each.

A gateway may echo request headers JSON-escaped (``\\/`` for ``/``, ``\\u002b`` for ``+``),
so a plain byte search for the token misses it; decoded messages are scrubbed too.
"""

from __future__ import annotations

import json


def secret_forms(secret: str) -> list[bytes]:
    """The token as raw UTF-8 and in the JSON escapings gateways use, longest first."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        "".join(f"\\u{ord(c):04x}" if not c.isalnum() else c for c in secret),
    }
    return sorted((f.encode("utf-8") for f in forms if f), key=len, reverse=True)
