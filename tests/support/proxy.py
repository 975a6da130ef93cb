"""A loopback TCP proxy that injects network faults, for tests against real servers.

```
with FaultProxy(sshd.port) as proxy:        # listens on 127.0.0.1:proxy.port
    proxy.cut_after(256 * 1024)             # set a fault at any time, even mid-connection
    ...                                     # connect to proxy.port instead of sshd.port
    proxy.forward()                         # back to plain forwarding
```

Modes (`proxy.mode` names the current one; every method is thread-safe):

- `forward()` ("pass"): forward both directions. The initial mode.
- `cut_after(n)` ("cut"): once a connection has sent `n` bytes client→server in total (counted
  from its first byte, handshake included), forward exactly up to `n` and close both sides.
  A connection already past `n` is cut as soon as it sends more.
- `stall_after(n)` ("stall"): once a connection has sent `n` bytes client→server, stop
  forwarding in both directions but keep both sockets open, like a link that silently dropped.
  Data read meanwhile is held back and delivered, in order, if the mode returns to `forward()`.
- `refuse()` ("refuse"): accept new connections and close them at once; open connections
  carry on as they are.

Counters: `connections` (accepted so far) and `upstream_bytes` (client→server bytes forwarded
over all connections). `close()` (or leaving the `with` block) closes every socket and joins
every thread it started; a closed proxy cannot be reused.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType

_POLL = 0.05  # how often a blocked thread looks at the mode and the closing flag
_CHUNK = 64 * 1024


class _Connection:
    """One client connection and its upstream socket; `up` counts client→server bytes."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.up = 0
        self.dead = threading.Event()
        self.threads: list[threading.Thread] = []

    def kill(self) -> None:
        """Shut both sockets down; the pumps notice, exit, and the proxy closes the sockets."""
        self.dead.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.close()


class FaultProxy:
    """Forward 127.0.0.1:`port` to `target_host`:`target_port`, with injectable faults."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._mode = "pass"
        self._limit = 0
        self._closing = False
        self._connections: list[_Connection] = []
        self.connections = 0
        self.upstream_bytes = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, name="fault-proxy-accept")
        self._acceptor.start()

    # ----------------------------------------------------------------------- modes

    @property
    def mode(self) -> str:
        """The current mode: "pass", "cut", "stall" or "refuse"."""
        with self._lock:
            return self._mode

    def forward(self) -> None:
        """Forward everything (mode "pass"); stalled connections resume."""
        self._set("pass", 0)

    def cut_after(self, n_bytes_upstream: int) -> None:
        """Close a connection once it has sent `n_bytes_upstream` bytes client→server."""
        self._set("cut", n_bytes_upstream)

    def stall_after(self, n_bytes_upstream: int) -> None:
        """Stop forwarding on a connection once it has sent `n_bytes_upstream` bytes upstream."""
        self._set("stall", n_bytes_upstream)

    def refuse(self) -> None:
        """Accept new connections and close them immediately."""
        self._set("refuse", 0)

    def _set(self, mode: str, limit: int) -> None:
        if limit < 0:
            raise ValueError("the byte count must be >= 0")
        with self._changed:
            self._mode, self._limit = mode, limit
            self._changed.notify_all()

    # ----------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close every socket and join every thread; safe to call twice."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._acceptor.join()  # first: it adds no connection after this
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.kill()
        for conn in connections:
            for thread in conn.threads:
                thread.join()
            conn.close()
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------- threads

    def _accept(self) -> None:
        while True:
            with self._lock:
                if self._closing:
                    return
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                refuse = self._mode == "refuse" or self._closing
            if refuse:
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            conn = _Connection(client, server)
            conn.threads = [
                threading.Thread(target=self._pump, args=(conn, True), name="fault-proxy-up"),
                threading.Thread(target=self._pump, args=(conn, False), name="fault-proxy-down"),
            ]
            with self._lock:
                self._connections = [c for c in self._connections if not _finished(c)]
                self._connections.append(conn)
            for thread in conn.threads:
                thread.start()

    def _pump(self, conn: _Connection, upstream: bool) -> None:
        source, sink = (conn.client, conn.server) if upstream else (conn.server, conn.client)
        held = b""  # read but not yet forwarded (stalled, or past a cut)
        try:
            while not conn.dead.is_set():
                with self._changed:
                    if self._closing:
                        return
                    mode, limit = self._mode, self._limit
                    if mode == "stall" and conn.up >= limit:
                        self._changed.wait(_POLL)  # stalled: neither read nor forward
                        continue
                if not held:
                    readable, _, _ = select.select([source], [], [], _POLL)
                    if not readable:
                        continue
                    held = source.recv(_CHUNK)
                    if not held:
                        return  # EOF: the other side goes too
                if not upstream:
                    sink.sendall(held)
                    held = b""
                    continue
                if mode in ("cut", "stall"):
                    room = max(0, limit - conn.up)
                    chunk, held = held[:room], held[room:]
                else:
                    chunk, held = held, b""
                if chunk:
                    sink.sendall(chunk)
                    with self._lock:
                        conn.up += len(chunk)
                        self.upstream_bytes += len(chunk)
                if mode == "cut" and conn.up >= limit:
                    return
        except OSError:
            return
        finally:
            conn.kill()


def _finished(conn: _Connection) -> bool:
    """True (and its sockets closed, its threads joined) for a connection whose pumps ended."""
    if any(thread.is_alive() for thread in conn.threads):
        return False
    for thread in conn.threads:
        thread.join()
    conn.close()
    return True
