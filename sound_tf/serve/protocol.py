"""uvicorn's HTTP/1.1 protocol with a deadline for a connection's first request headers.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but only once a response has
been sent: a client that connects and sends nothing, or half a request line, held its connection for
ever, and ``limit_concurrency`` connections like that locked every client out (health probes included).
Here a connection whose first request headers are not complete within ``timeout_keep_alive`` seconds
(``keep_alive_seconds``, ``SOUND_TF_KEEP_ALIVE_SECONDS``) is closed as an idle one.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection with no complete request headers after the keep-alive time."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline = self.loop.call_later(self.timeout_keep_alive, self._close_if_no_request)

    def _close_if_no_request(self) -> None:
        if self.cycle is None and not self.transport.is_closing():  # no request has begun on this connection
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_deadline.cancel()
        super().connection_lost(exc)
