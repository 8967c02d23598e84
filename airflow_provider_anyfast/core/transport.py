"""Every HTTP exchange with the gateway, on urllib3: its pools, its proxy manager, its TLS.

One path for every call (plain POST, streamed POST, GET of the model list), so there is
one place where a network failure becomes our error, and it does so once:

- no connection within the connect timeout: ``AnyFastConnectionError`` with ``sent=False``
  (as for a refused connection or an unknown host: nothing was sent, nothing billed);
- no answer within the read timeout: ``AnyFastTimeoutError`` (the request was sent and
  may have been billed);
- anything else on the way (TLS, proxy, a dropped connection): ``AnyFastConnectionError``
  with a sentence saying what to fix.

The environment is read as requests reads it: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``
with ``NO_PROXY``, and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` for the CA bundle (else
certifi's). Redirects are followed by urllib3 (a cross-host one drops the Authorization
header); cookies a gateway sets (sticky load balancers) are kept and sent back.
urllib3 never retries here: retries are ``retry.py``'s.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError

from airflow_provider_anyfast.core.network import describe_network_error
from airflow_provider_anyfast.exceptions import (
    AnyFastConnectionError,
    AnyFastStreamError,
    AnyFastTimeoutError,
)

#: What requests sends by default, so the gateway sees the same request as before.
BASE_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": urllib3.util.make_headers(accept_encoding=True)["accept-encoding"].replace(",", ", "),
    "Connection": "keep-alive",
}
#: urllib3 retries nothing (connect=0, read=0...) but follows up to 5 redirects.
NO_RETRIES = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5, raise_on_redirect=False)
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class Reply:
    """An HTTP answer: status, headers and (unless streamed) the body, already read."""

    __slots__ = ("data", "headers", "raw", "status")

    def __init__(self, raw: urllib3.BaseHTTPResponse, streamed: bool) -> None:
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.data = raw.data if not streamed or raw.status >= 400 else b""  # an error's body is read at once

    def json(self) -> Any:
        return json.loads(self.data)

    def iter_lines(self) -> Iterator[bytes]:
        """A streamed body line by line (CRLF or LF); a connection that breaks raises ``AnyFastStreamError``."""
        pending, done = b"", False
        try:
            for chunk in self.raw.stream(512, decode_content=True):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    yield line.removesuffix(b"\r")
            done = True
            if pending:
                yield pending.removesuffix(b"\r")
        except _NETWORK_ERRORS as exc:
            raise AnyFastStreamError(f"the stream broke off: {type(exc).__name__}") from None
        finally:
            if not done:  # left before the end: the connection still holds unread data, so it is not reused
                self.raw.close()
            self.raw.release_conn()


class Transport:
    """Sends JSON requests on pooled connections; thread-safe. ``where`` names the server in errors (redacted)."""

    def __init__(self, *, timeout: tuple[float, float], pool_size: int, headers: Mapping[str, str], where: str) -> None:
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self.pool_size = pool_size
        self.headers = {**BASE_HEADERS, **headers}
        self.where = where
        self.cookies = http.cookiejar.CookieJar()
        self._lock = threading.Lock()
        self._managers: dict[tuple[str, str], urllib3.PoolManager] = {}  # (scheme, host) -> direct or proxy

    def request(self, method: str, url: str, body: Any = None, *, stream: bool = False) -> Reply:
        """One exchange, no retries; network failures raise our errors (an HTTP error status does not)."""
        target = urlsplit(url)
        manager = self._managers.get((target.scheme, target.netloc)) or self._manager(target.scheme, target.netloc)
        headers = self.headers
        data = None
        if body is not None:
            data = json.dumps(body, allow_nan=False).encode("utf-8")
            headers = {**headers, "Content-Type": "application/json"}
        if len(self.cookies):
            headers = {**headers, **_cookie_header(self.cookies, url)}
        try:
            raw = manager.urlopen(
                method, url, body=data, headers=headers, retries=NO_RETRIES, timeout=self.timeout,
                preload_content=not stream, decode_content=True,
            )  # fmt: skip
            reply = Reply(raw, stream)
        except _NETWORK_ERRORS as exc:
            raise self._error(exc) from None
        if "set-cookie" in raw.headers:
            self.cookies.extract_cookies(_CookieResponse(raw.headers), urllib.request.Request(url))  # type: ignore[arg-type]
        return reply

    def close(self) -> None:
        with self._lock:
            for manager in self._managers.values():
                manager.clear()
            self._managers.clear()

    def _error(self, exc: BaseException) -> AnyFastConnectionError:
        """The one conversion of a urllib3 failure into ours."""
        reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason is not None else exc
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return AnyFastConnectionError(
                f"no connection to {self.where} within {self.timeout.connect_timeout:g}s (nothing was sent): "
                "is the host reachable from this worker?",
                sent=False,
            )
        if isinstance(reason, ReadTimeoutError):
            return AnyFastTimeoutError(
                f"no answer from {self.where} within {self.timeout.read_timeout:g}s (ReadTimeout)"
            )
        sent = not isinstance(reason, NewConnectionError)  # refused or unknown host: no connection, nothing sent
        return AnyFastConnectionError(
            f"could not reach {self.where}: {describe_network_error(exc, self.where)}", sent=sent
        )

    def _manager(self, scheme: str, netloc: str) -> urllib3.PoolManager:
        """Per host, once: a direct pool manager, or a proxy manager when the environment says so."""
        with self._lock:
            key = (scheme, netloc)
            if key not in self._managers:
                proxy = proxy_for(scheme, netloc)
                kw: dict[str, Any] = {"num_pools": 10, "maxsize": self.pool_size, "block": False, **_tls()}
                if proxy is None:
                    self._managers[key] = urllib3.PoolManager(**kw)
                elif proxy.startswith("socks"):
                    from urllib3.contrib.socks import SOCKSProxyManager  # needs PySocks, as requests' socks extra

                    self._managers[key] = SOCKSProxyManager(proxy, **kw)
                else:
                    auth = urlsplit(proxy)
                    creds = f"{auth.username}:{auth.password or ''}" if auth.username else None
                    headers = urllib3.util.make_headers(proxy_basic_auth=creds) if creds else None
                    self._managers[key] = urllib3.proxy_from_url(proxy, proxy_headers=headers, **kw)
            return self._managers[key]


def proxy_for(scheme: str, netloc: str) -> str | None:
    """The proxy URL the environment gives for this host, as requests picks it; None to go direct."""
    proxies = urllib.request.getproxies_environment()
    host = netloc.rpartition("@")[2]
    if urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]  # not in typeshed
        return None
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _tls() -> dict[str, Any]:
    """The CA bundle requests would use: ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, else certifi's."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        try:
            import certifi
        except ImportError:  # pragma: no cover - urllib3 then loads the system store
            return {"cert_reqs": "CERT_REQUIRED"}
        bundle = certifi.where()
    key = "ca_cert_dir" if os.path.isdir(bundle) else "ca_certs"
    return {"cert_reqs": "CERT_REQUIRED", key: bundle}


class _CookieResponse:
    """What ``http.cookiejar`` reads from an answer: its ``Set-Cookie`` headers."""

    def __init__(self, headers: urllib3.HTTPHeaderDict) -> None:
        self._headers = headers

    def info(self) -> _CookieResponse:
        return self

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        return self._headers.getlist(name) or default


def _cookie_header(jar: http.cookiejar.CookieJar, url: str) -> dict[str, str]:
    request = urllib.request.Request(url)
    jar.add_cookie_header(request)
    cookie = request.get_header("Cookie")
    return {"Cookie": cookie} if cookie else {}
