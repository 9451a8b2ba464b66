"""The console's web server: uvicorn on a socket bound before it starts (127.0.0.1 and
a free port unless told otherwise), in the foreground (`run`, stopped by Ctrl-C) or in a
thread (`start` / `stop`, for tests and the benchmark).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from objectstore_s3.store import ObjectStore

from .app import create_app
from .security import Guard

__all__ = ["LOOPBACK", "ConsoleServer"]

LOOPBACK = "127.0.0.1"
START_SECONDS = 20.0


class ConsoleServer:
    """One console for one store, on its own socket."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        read_only: bool = False,
        **app_options: Any,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)
        self.host = host
        self.port: int = self.socket.getsockname()[1]
        names = [f"[{host}]" if ":" in host else host]
        if host in ("0.0.0.0", "::"):  # noqa: S104 - only when the user asks for it (--host)
            names += [socket.gethostname(), socket.getfqdn()]
        self.guard = Guard(self.port, names)
        self.app = create_app(store, self.guard, read_only=read_only, **app_options)
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, server_header=False
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL to open, with the token (the loopback name for a wildcard address)."""
        shown = LOOPBACK if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return self.guard.url(f"[{shown}]" if ":" in shown else shown)

    def run(self) -> None:
        """Serve until Ctrl-C (uvicorn's own signal handling), then close the socket."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()
            self.app.state.console.close()

    def start(self) -> None:
        """Serve in a thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="objectstore-console", daemon=True)
        self._thread.start()
        self.wait_started()

    def wait_started(self, timeout: float = START_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or (self._thread and not self._thread.is_alive()):
                raise RuntimeError(f"the console did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask the server to finish its requests and stop; wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=START_SECONDS)
            self._thread = None
