"""A keep-alive HTTP/1.1 connection to the server (standard library only).

One `Http` per thread that talks to the server: `http.client` connections
are not thread-safe, and the client, the outbox sender and the gate's poller
each run on their own thread.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any


class ComplianceError(Exception):
    """The server refused the request (4xx); `body` carries its code and detail."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict):
            code = self.body.get("code")
            return str(code) if code is not None else None
        return None


class Http:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 10.0):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"base_url must be http(s)://..., not {base_url!r}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if self._https else 80)
        self.prefix = parsed.path.rstrip("/")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """One attempt: (status, headers, parsed JSON body or None). Raises
        OSError / http.client.HTTPException when the server cannot be reached;
        the connection is then dropped so the next call reconnects."""
        self.start(method, path, body)
        return self.finish()

    def start(self, method: str, path: str, body: bytes | None = None) -> None:
        """The first half of `send`: the request goes out and the caller may
        do other work while the server answers; `finish()` reads the answer.
        Raises as `send` does."""
        try:
            self._connection().request(method, self.prefix + path, body=body, headers=self.headers)
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def finish(self) -> tuple[int, dict[str, str], Any]:
        """The answer to the request `start` sent, as `send` returns it."""
        try:
            response = self._connection().getresponse()
            raw = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = {"code": "invalid_response", "detail": raw[:200].decode("utf-8", "replace")}
        if headers.get("connection", "").lower() == "close":
            self.close()
        return response.status, headers, data


def retry_after(headers: dict[str, str], default: float) -> float:
    """Seconds from a Retry-After header (the server sends it with 503)."""
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default
