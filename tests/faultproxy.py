"""A TCP proxy in front of a real server that forwards, refuses, or black-holes.

- `forward()`: a plain forwarder (the server as it is);
- `refuse()`: new connections are refused and open ones cut (the server went away);
- `black_hole()`: connections stay up and are even accepted, but nothing is answered —
  what a stalled server, a hung pooler or a dropped route looks like to a client. The
  kernel still acknowledges what the client sends, so TCP keepalives and TCP_USER_TIMEOUT
  see nothing wrong: only the client's own deadline can end its wait.

`FaultProxy(port).url_for(url)` gives the server's URL through the proxy.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Mode = Literal["forward", "refuse", "black_hole"]


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "forward"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._listener: socket.socket | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listen()

    def url_for(self, url: str) -> str:
        """`url` (naming the target as host:port) pointed at the proxy instead."""
        host, port = self.target
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}")

    # --- the three behaviours -------------------------------------------------------------
    def forward(self) -> None:
        """Pass traffic again. Connections that lived through a black hole lost bytes on the way, so
        they are cut (as by a server that was restarted); clients connect afresh."""
        with self._lock:
            cut = self._pairs if self.mode == "black_hole" else []
            self._pairs = [] if cut else self._pairs
            self.mode = "forward"
        for pair in cut:
            _close(*pair)
        self._listen()

    def refuse(self) -> None:
        """Refuse new connections and cut the open ones."""
        with self._lock:
            self.mode = "refuse"
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the thread
            listener.close()
        for pair in pairs:
            _close(*pair)

    def black_hole(self) -> None:
        """Accept connections, answer nothing, forward nothing; open ones go silent too."""
        with self._lock:
            self.mode = "black_hole"
        self._listen()

    def close(self) -> None:
        self.refuse()

    # --- plumbing ------------------------------------------------------------------------
    def _listen(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="faultproxy-accept", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = None
            if self.mode == "forward":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    _close(client, None)
                    continue
            with self._lock:
                self._pairs.append((client, upstream))
            if upstream is not None:
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), name="faultproxy-pipe", daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.mode != "forward":
                    continue  # black hole: read and drop, so the sender's kernel sees every byte acknowledged
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source, sink)


def _close(a: socket.socket, b: socket.socket | None) -> None:
    for s in (a, b):
        if s is None:
            continue
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()
