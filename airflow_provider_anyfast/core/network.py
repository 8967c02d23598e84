"""Network failures in words: what happened on the way to the gateway, and what to do.

urllib3 reports a plain-http server reached over https as ``SSLError`` and a server that
is not running as ``NewConnectionError``; a bare class name tells a user nothing. The
cause is read from the exception chain (urllib3's reasons), never from the URL, so no
credential can leak into the message.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

_LOCAL_HOSTS = ("localhost", "127.", "0.0.0.0", "::1", "10.", "192.168.", "host.docker.internal")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and the exceptions in their args (urllib3 nests them)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def describe_network_error(exc: BaseException, base_url: str) -> str:
    """One sentence: the kind of failure and the fix (the URL is the caller's, already redacted)."""
    parts = urlsplit(base_url)
    host = parts.hostname or base_url
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc)).lower()
    if "SSLError" in names or any(isinstance(e, ssl.SSLError) for e in _chain(exc)):
        hint = "check the server's certificate"
        if parts.scheme == "https" and (host.startswith(_LOCAL_HOSTS) or "wrong version number" in text):
            hint = (
                "if this server speaks plain http (a local or self-hosted gateway), write http:// in the Base URL "
                "(a Base URL without a scheme is taken as https)"
            )
        return f"the TLS (https) handshake with {host} failed (SSLError): {hint}"
    if "ProxyError" in names:
        return f"the HTTP proxy refused the request to {host} (ProxyError): check HTTPS_PROXY/NO_PROXY"
    if "NameResolutionError" in names or "gaierror" in names or "name or service not known" in text:
        return f"the host name {host!r} could not be resolved (DNS): check the connection's Base URL"
    if "ConnectionRefusedError" in names or "connection refused" in text:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{host} refused the connection on port {port}: is the server running there?"
    if "ConnectionResetError" in names or "RemoteDisconnected" in names:
        return f"{host} closed the connection before answering ({type(exc).__name__}); it is retried"
    return f"the request to {host} failed on the network ({type(exc).__name__})"
