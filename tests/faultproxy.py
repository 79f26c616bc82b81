"""A small HTTP proxy on loopback that misbehaves on purpose, between a store and its hub.

One request per connection (it answers ``Connection: close``), one thread per
connection. Faults are queued and consumed, in order, by the requests that ``match``;
other requests, and matching ones once the queue is empty, pass through untouched.

Faults:

* ``"500"`` / ``"503"``: answer that status without asking the hub (503 carries
  ``Retry-After: 1``);
* ``"hang"``: read the request and never answer (until the client gives up);
* ``"drop"``: forward the request, let the hub answer (and commit), then close the
  connection without a byte of the answer: the store cannot know what happened;
* ``"reset"``: close the connection at once, with a TCP reset;
* ``"slow"``: hold the request ``slow_s`` / 2 before forwarding it and the hub's answer
  ``slow_s`` / 2 before relaying it (a push stays open long enough to be killed in).

Standing rules (:meth:`FaultProxy.fail_when`) are not consumed: every request whose
method, path and body satisfy the rule's predicate gets its fault, e.g. "answer 500
whenever the batch holds this transaction". Queued faults come first.

:meth:`FaultProxy.refuse_for` closes the listening socket for a while: connection
refused, as when the hub's machine is up but its server is not.

Every request is logged as an :class:`Exchange` (when it was read, when the proxy was
done with it, which fault it got), so a test can tell what was in flight when.
"""

from __future__ import annotations

import collections
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Match = Callable[[str, str], bool]
BodyMatch = Callable[[str, str, bytes], bool]  # method, path, body


@dataclass
class Exchange:
    """One request through the proxy (times from ``time.monotonic()``)."""

    method: str
    path: str
    body: bytes
    started: float
    fault: str | None = None
    ended: float | None = None  # None while the proxy still holds it

    def open_during(self, since: float, until: float) -> bool:
        """Read before ``since`` and not finished before ``until``."""
        return self.started < since and (self.ended is None or self.ended > until)


def _read_request(conn: socket.socket) -> tuple[bytes, str, str, bytes] | None:
    """The raw request (headers and body), its method, path and body; None if the peer
    left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    # One request per connection: ask the hub to close, so reading to EOF is the answer.
    kept = [line for line in lines[1:] if not line.lower().startswith("connection:")]
    raw = "\r\n".join([lines[0], *kept, "Connection: close"]).encode("latin-1")
    return raw + b"\r\n\r\n" + body, method, path, body


def _canned(status: int, reason: str, extra: str = "") -> bytes:
    body = json.dumps({"error": "proxy_fault", "message": reason}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode() + body


class FaultProxy:
    """Listens on a free loopback port and forwards to ``127.0.0.1:upstream_port``."""

    def __init__(
        self,
        upstream_port: int,
        match: Match | None = None,
        hang_s: float = 30,
        slow_s: float = 1.0,
    ) -> None:
        self.upstream_port = upstream_port
        self.match = match or (lambda method, path: True)
        self.hang_s = hang_s
        self.slow_s = slow_s
        self.faults: collections.deque[str] = collections.deque()
        self.rules: list[tuple[BodyMatch, str]] = []
        self.done: list[str] = []  # faults applied, in order (queued ones only)
        self.rule_hits = 0  # requests a standing rule applied to
        self.exchanges: list[Exchange] = []
        self.passed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._open_conns: set[socket.socket] = set()
        self.port = self._bind(0).getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # -- control --------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start accepting connections."""
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and close every open connection."""
        self._stop.set()
        self._close_listener()
        with self._lock:
            for conn in list(self._open_conns):
                _close(conn)

    def inject(self, *faults: str) -> None:
        """Queue faults for the next matching requests."""
        with self._lock:
            self.faults.extend(faults)

    def fail_when(self, predicate: BodyMatch, fault: str = "500") -> None:
        """A standing rule: every request satisfying ``predicate`` gets ``fault``."""
        with self._lock:
            self.rules.append((predicate, fault))

    def clear_rules(self) -> None:
        """Forget the standing rules: requests pass again (queued faults stay)."""
        with self._lock:
            self.rules.clear()

    def log(self, path_prefix: str = "") -> list[Exchange]:
        """The exchanges so far whose path starts with ``path_prefix``, oldest first."""
        with self._lock:
            return [e for e in self.exchanges if e.path.startswith(path_prefix)]

    def in_flight(self, path_prefix: str = "") -> int:
        """Requests read and not finished yet whose path starts with ``path_prefix``."""
        return sum(e.ended is None for e in self.log(path_prefix))

    def pending(self) -> int:
        """Faults queued and not yet applied."""
        with self._lock:
            return len(self.faults)

    def refuse_for(self, seconds: float) -> None:
        """Close the listening socket (connection refused), listen again after ``seconds``."""
        self._close_listener()

        def reopen() -> None:
            time.sleep(seconds)
            if not self._stop.is_set():
                self._bind(self.port)
                threading.Thread(target=self._accept_loop, daemon=True).start()

        threading.Thread(target=reopen, daemon=True).start()

    def cut(self) -> None:
        """Cut the link until :meth:`restore`: refuse new connections, drop open ones."""
        self._close_listener()
        with self._lock:
            for conn in list(self._open_conns):
                _close(conn)

    def restore(self) -> None:
        """Listen again on the same port after :meth:`cut`."""
        self._bind(self.port)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def clear(self) -> None:
        """Forget the faults still queued."""
        with self._lock:
            self.faults.clear()

    # -- internals ------------------------------------------------------------------

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        self._listener = sock
        return sock

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            _close(sock)

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: refused on purpose, or stopped
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _next_fault(self, method: str, path: str, body: bytes) -> Exchange:
        with self._lock:
            exchange = Exchange(method, path, body, time.monotonic())
            self.exchanges.append(exchange)
            if self.faults and self.match(method, path):
                exchange.fault = self.faults.popleft()
                self.done.append(exchange.fault)
                return exchange
            for predicate, fault in self.rules:
                if predicate(method, path, body):
                    exchange.fault = fault
                    self.rule_hits += 1
                    return exchange
            self.passed += 1
            return exchange

    def _handle(self, conn: socket.socket) -> None:
        with self._lock:
            self._open_conns.add(conn)
        exchange = None
        try:
            request = _read_request(conn)
            if request is None:
                return
            raw, method, path, body = request
            exchange = self._next_fault(method, path, body)
            fault = exchange.fault
            if fault == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif fault == "500":
                conn.sendall(_canned(500, "Internal Server Error"))
            elif fault == "503":
                conn.sendall(_canned(503, "Service Unavailable", "Retry-After: 1\r\n"))
            elif fault == "hang":
                conn.settimeout(self.hang_s)
                try:
                    conn.recv(1)  # returns when the client gives up and closes
                except OSError:
                    pass
            else:
                if fault == "slow":
                    self._stop.wait(self.slow_s / 2)
                answer = self._forward(raw)
                if fault == "slow":
                    self._stop.wait(self.slow_s / 2)
                if fault != "drop":
                    conn.sendall(answer)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open_conns.discard(conn)
                if exchange is not None:
                    exchange.ended = time.monotonic()
            _close(conn)

    def _forward(self, raw: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=60) as up:
            up.sendall(raw)
            chunks = []
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


def _close(sock: socket.socket) -> None:
    try:
        # shutdown() first: close() alone does not wake a thread blocked in accept().
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
