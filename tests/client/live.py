"""A live test server the SDK tests can stop and start again on the same port.

Django's LiveServerThread, with two changes: the port is reused on restart
(an outage is the same URL going away and coming back), and accepted sockets
set TCP_NODELAY. Without it wsgiref's separate writes of headers and body
wait for the client's delayed ACK, and every request takes 40 ms more than
the server spends on it, which would hide what the gate costs."""

from __future__ import annotations

import socket
from typing import Any

from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler
from pytest_django.live_server_helper import LiveServer


class NoDelayServer(ThreadedWSGIServer):
    allow_reuse_address = True

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class NoDelayThread(LiveServerThread):
    server_class = NoDelayServer

    def _create_server(self, connections_override: Any = None) -> NoDelayServer:
        return NoDelayServer(
            (self.host, self.port),
            QuietWSGIRequestHandler,
            allow_reuse_address=True,
            connections_override=connections_override,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(port: int) -> LiveServer:
    server = LiveServer(f"127.0.0.1:{port}", start=False)
    old = server.thread
    server.thread = NoDelayThread(
        "127.0.0.1",
        static_handler=old.static_handler,
        connections_override=old.connections_override,
        port=port,
    )
    server.thread.daemon = True
    server._live_server_modified_settings.enable()
    server.start()
    return server


def stop(server: LiveServer) -> None:
    server.stop()
    server._live_server_modified_settings.disable()
