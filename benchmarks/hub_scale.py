"""How many stores can one hub serve? (issue 11)

Starts a real hub (``kiosk hub serve`` on a free 127.0.0.1 port, data in a temporary
folder, a small catalog and N registered stores) and simulates the N stores in this one
process, on asyncio, without a thread per store. Each simulated store does what the
store's sync worker does (app/store/sync/worker.py, pull.py, client.py), signing every
request as docs/protocol.md says (app/core/signing.py):

- long-polls ``GET /api/v1/changes?since=CURSOR&wait=25&limit=2000`` from its cursor
  (``wait=0`` while the hub says ``more``), a read timeout of ``wait + 10`` s;
- posts a small batch (1 to 3 ``stock.movement``) every ``--post-every`` seconds,
  jittered (0.5x to 1.5x), one batch at a time, a failed batch sent again;
- after a failure, waits as the store does (app/store/sync/backoff.py: full jitter,
  ``Retry-After`` honoured on 429/503).

The stores start as stores already in sync: their cursor is the hub's newest seq.

A driver thread makes a change at the hub ``--changes-per-s`` times a second (a
``stock.movement`` of a demo store applied by the hub's own ``apply_batch`` on its own
connection: a ``stock`` change, which goes to every store) and records when it
committed; each store records when a page holding it arrives. Delivery latency =
arrival - commit, for every (change, store) pair; a pair not delivered by the end of
the run counts as "never" (infinite) in the percentiles.

Per N it reports: delivery p50/p95 and the share never delivered; post p50/p95 (a
batch's first send to its acknowledgement, retries included; a batch unacknowledged at
the end counts as infinite); failed requests by kind (refused
connection, connect timeout, read timeout, reset/closed, 5xx, 429/503, other 4xx);
the hub's CPU (% of one core, /proc/<pid>/stat over the loaded window) and peak RSS
(VmHWM); this process's CPU (to see whether the load generator was the limit); and a
verdict: "holds" when delivery p95 <= 2 s, post p95 <= 2 s, nothing undelivered and no
failed request, else "breaks: why".

Bounded: each N stops by itself after ``--seconds`` plus ``--drain`` (no new post nor
change during the drain; requests still open at its end are abandoned, not counted as
errors); it only talks to 127.0.0.1; file descriptors are raised with setrlimit within
the hard limit, and an N that would need more is not run (said so in its verdict).

Whatever the hub does, each N also has a hard deadline: ``--start-allowance`` (seeding,
start-up, readiness) + ``--seconds`` + ``--drain`` + a few seconds to cancel. The load's
own event loop stops at its part of it (every task cancelled, the driver abandoned), and
a watchdog thread backs it: at the deadline it dumps every thread's stack (faulthandler),
kills the hub this harness started (its process group, by pid) and, if the harness has
not come back within ``WATCHDOG_GRACE_S``, prints what it has and exits 3. An N that did
not finish gets the verdict "did not finish: <phase it was in>", and the harness exits 1
after the other counts.

    .venv/bin/python benchmarks/hub_scale.py --stores 10,40,100,250 --seconds 25
    .venv/bin/python benchmarks/hub_scale.py --stores 40 --seconds 20 --json /tmp/hub.json

``--backend postgresql`` and ``--workers W`` are refused (exit 2) until the hub
supports them (issue 11).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import faulthandler
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core import db as dbmod  # noqa: E402
from app.core.signing import sign_request  # noqa: E402
from app.demo import hub_seed  # noqa: E402
from app.hub.domain import changes, registry  # noqa: E402
from app.hub.protocol.transactions import apply_batch  # noqa: E402
from app.hub.storage import db_path, open_db  # noqa: E402
from app.store.sync import backoff  # noqa: E402
from app.store.sync.client import CONNECT_TIMEOUT_S, READ_TIMEOUT_S  # noqa: E402
from app.store.sync.worker import PULL_WAIT_S  # noqa: E402

DELIVERY_P95_MAX_S = 2.0  # issue 11's target
POST_P95_MAX_S = 2.0
PAGE_LIMIT = 2000  # as app/store/sync/pull.py asks
HUB_DEFAULT_THREADS = 32  # `kiosk hub serve --threads` default (app/hub/cli.py)
ERROR_KINDS = (
    "refused",
    "connect_timeout",
    "read_timeout",
    "reset",
    "5xx",
    "429/503",
    "4xx",
    "fd_limit",
)
FDS_PER_STORE = 2  # one connection for the long-poll, one for posts (as a pooled session)
FDS_SPARE = 200
CLK_TCK = os.sysconf("SC_CLK_TCK")
CANCEL_GRACE_S = 10.0  # after the drain: tasks cancelled, the driver joined, the hub stopped
WATCHDOG_GRACE_S = 15.0  # after the deadline: the harness must be back, or it exits 3
DID_NOT_FINISH = "did not finish"


# --- The hard deadline ------------------------------------------------------------------


class Watchdog:
    """A per-N hard deadline kept by a thread, whatever the main thread is blocked on.

    ``phase`` says where the harness is (set as it goes). At ``deadline`` the watchdog
    notes the phase, dumps every thread's stack to stderr, kills the hub's process group
    (only a hub this harness started) and waits ``grace`` seconds for :meth:`disarm`;
    then it calls ``on_give_up(phase)`` (which prints what there is) and exits 3."""

    def __init__(self, deadline: float, grace: float, on_give_up: Any) -> None:
        self.deadline = deadline  # monotonic
        self.grace = grace
        self.on_give_up = on_give_up
        self.phase = "starting"
        self.expired_in: str | None = None  # the phase at the deadline, once expired
        self.hub: subprocess.Popen | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self._thread.start()

    def enter(self, phase: str) -> None:
        self.phase = phase
        print(f"  ... {phase}", file=sys.stderr, flush=True)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def disarm(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self.remaining()):
            return
        self.expired_in = self.phase
        print(
            f"\n!! hard deadline passed while {self.phase}: stacks of every thread follow",
            file=sys.stderr,
            flush=True,
        )
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        if self.hub is not None:
            kill_hub(self.hub)
        if self._done.wait(self.grace):
            return
        try:
            self.on_give_up(self.phase)
        finally:
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(3)


# --- A small HTTP/1.1 client on asyncio streams --------------------------------------


class Failed(Exception):
    """A request that got no HTTP answer; ``kind`` is one of ERROR_KINDS."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Conn:
    """One keep-alive HTTP/1.1 connection to the hub, reopened after an error."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def _connect(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see Conn.request
                self.reader, self.writer = await asyncio.open_connection(
                    self.host, self.port, limit=1 << 24
                )
        except TimeoutError as exc:
            raise Failed("connect_timeout") from exc
        except ConnectionRefusedError as exc:
            raise Failed("refused") from exc
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise Failed("fd_limit") from exc
            raise Failed("reset") from exc

    async def request(
        self,
        method: str,
        path_qs: str,
        body: bytes,
        headers: dict[str, str],
        read_timeout: float,
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            await self._connect(CONNECT_TIMEOUT_S)
        assert self.reader is not None and self.writer is not None
        lines = [f"{method} {path_qs} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands as the answer arrives (it returns the answer), and a poll loop cancelled
            # at the end of the run then polled on forever. The write is inside it too.
            async with asyncio.timeout(read_timeout):
                self.writer.write(head + body)
                await self.writer.drain()
                status, hdrs, data = await self._response()
        except TimeoutError as exc:
            self.close()
            raise Failed("read_timeout") from exc
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.close()
            raise Failed("reset") from exc
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, data

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        hdrs: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if "content-length" in hdrs:
            data = await self.reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            data = b"".join(parts)
        else:
            data = await self.reader.read()
            hdrs["connection"] = "close"
        return status, hdrs, data


def status_kind(status: int) -> str:
    if status in (429, 503):
        return "429/503"
    return "5xx" if status >= 500 else "4xx"


# --- One run --------------------------------------------------------------------------


@dataclass
class Store:
    index: int
    id: str
    secret: str


@dataclass
class Run:
    """What one run measures, shared by every simulated store (one event loop)."""

    stores: list[Store]
    skus: list[str]
    host: str
    port: int
    seconds: float
    drain: float
    post_every: float
    wait: int
    start_cursor: str
    t_start: float = 0.0  # monotonic: load starts
    t_end: float = 0.0  # no new post nor change after this
    commits: dict[str, float] = field(default_factory=dict)  # driver tx id -> commit time
    arrivals: dict[str, dict[int, float]] = field(default_factory=dict)  # tx -> store -> t
    post_latencies: list[float] = field(default_factory=list)
    posts_in_flight: dict[int, float] = field(default_factory=dict)  # store -> first sent
    requests: int = 0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    error_samples: dict[str, str] = field(default_factory=dict)
    stuck_tasks: int = 0  # tasks still running after their cancellation was waited for
    driver_stuck: bool = False  # the driver thread still in apply_batch at the end

    def failed(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        self.error_samples.setdefault(kind, detail)


def retry_after(hdrs: dict[str, str]) -> float | None:
    value = hdrs.get("retry-after", "")
    return float(value) if value.isdigit() else None


async def poll_loop(run: Run, store: Store, rng: random.Random) -> None:
    """The store's pull loop: long-poll from its cursor, apply (here: note) each page."""
    conn = Conn(run.host, run.port)
    cursor, wait, attempt = run.start_cursor, run.wait, 0
    await asyncio.sleep(rng.uniform(0, 1.0))  # stores are not synchronised
    try:
        while time.monotonic() < run.t_end + run.drain:  # ends by itself, cancelled or not
            path = f"/api/v1/changes?since={cursor}&wait={wait}&limit={PAGE_LIMIT}"
            hdrs = sign_request(store.id, store.secret, "GET", path)
            hdrs["Accept"] = "application/json"
            run.requests += 1
            pause = None
            try:
                status, answer_hdrs, data = await conn.request(
                    "GET", path, b"", hdrs, max(READ_TIMEOUT_S, wait + 10)
                )
            except Failed as exc:
                run.failed(exc.kind)
                pause = backoff.delay(attempt, rng=rng)
            else:
                if status != 200:
                    run.failed(status_kind(status), f"{status} {data[:200]!r}")
                    pause = backoff.delay(
                        attempt,
                        retry_after=retry_after(answer_hdrs),
                        retryable=status in (408, 429) or status >= 500,
                        rng=rng,
                    )
                else:
                    now = time.monotonic()
                    page = json.loads(data)
                    for change in page["changes"]:
                        if change["kind"] == "stock":
                            tx = change["data"].get("tx")
                            if tx in run.commits:
                                run.arrivals[tx].setdefault(store.index, now)
                    cursor = page["cursor"]
                    wait = 0 if page.get("more") else run.wait
                    attempt = 0
            if pause is not None:
                attempt += 1
                wait = 0  # as the worker: no long-poll until a round succeeds
                await asyncio.sleep(pause)
                wait = run.wait
    finally:
        conn.close()


def movement(sku: str, delta: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": "stock.movement",
        "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "payload": {"sku": sku, "delta": delta, "kind": "adjusted", "reason": "bench"},
    }


async def post_loop(run: Run, store: Store, rng: random.Random) -> None:
    """The store's push loop: a small batch every few seconds, one at a time, sent again
    until acknowledged. A batch's latency runs from its first send to its acknowledgement
    (retries included), as the store lives it; one unacknowledged at the end is "never"."""
    if run.post_every <= 0:
        return  # --post-every 0: stores that only listen
    conn = Conn(run.host, run.port)
    attempt = 0
    batch: bytes | None = None
    await asyncio.sleep(rng.uniform(0, run.post_every))
    try:
        while True:
            if batch is None:
                if time.monotonic() >= run.t_end:
                    return  # no new batch during the drain; a pending one is still sent
                items = [
                    movement(rng.choice(run.skus), rng.choice((-1, 1)))
                    for _ in range(rng.randint(1, 3))
                ]
                batch = json.dumps({"transactions": items}, separators=(",", ":")).encode()
                run.posts_in_flight[store.index] = time.monotonic()
            path = "/api/v1/transactions"
            hdrs = sign_request(store.id, store.secret, "POST", path, batch)
            hdrs["Accept"] = "application/json"
            run.requests += 1
            pause = None
            try:
                status, answer_hdrs, data = await conn.request(
                    "POST", path, batch, hdrs, READ_TIMEOUT_S
                )
            except Failed as exc:
                run.failed(exc.kind)
                pause = backoff.delay(attempt, rng=rng)
            else:
                if status == 200:
                    first_sent = run.posts_in_flight.pop(store.index)
                    run.post_latencies.append(time.monotonic() - first_sent)
                    batch, attempt = None, 0
                    results = json.loads(data)["results"]
                    if any(r["status"] == "rejected" for r in results):
                        run.failed("4xx", f"rejected: {results!r:.200}")
                else:
                    run.failed(status_kind(status), f"{status} {data[:200]!r}")
                    pause = backoff.delay(
                        attempt,
                        retry_after=retry_after(answer_hdrs),
                        retryable=status in (408, 429) or status >= 500,
                        rng=rng,
                    )
            if pause is not None:
                attempt += 1
                await asyncio.sleep(pause)
            else:
                await asyncio.sleep(run.post_every * rng.uniform(0.5, 1.5))
    finally:
        conn.close()


def driver(run: Run, data: Path, store_id: str, rate: float, stop: threading.Event) -> None:
    """Changes at the hub at a steady rate, each recorded with its commit instant."""
    db = dbmod.connect(db_path(data))
    k, sign = 0, 1
    try:
        while not stop.is_set():
            due = run.t_start + 1.0 + k / rate  # one second of warm-up first
            if due >= run.t_end:
                return
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            item = movement(run.skus[k % len(run.skus)], sign)
            sign = -sign
            tx = item["id"]
            run.arrivals[tx] = {}
            run.commits[tx] = time.monotonic()  # provisional: a store may see it first
            result = apply_batch(db, store_id, [item])[0]
            run.commits[tx] = time.monotonic()  # the commit has returned
            if result["status"] != "accepted":
                raise RuntimeError(f"driver change refused: {result}")
            k += 1
    finally:
        db.close()


async def load(
    run: Run,
    data: Path,
    driver_store: str,
    rate: float,
    seed: int,
    window_end: Any,
    dog: Watchdog | None = None,
) -> float:
    """Run the stores and the driver; return this process's CPU seconds over the loaded
    window (``window_end()`` is called as it ends, before the drain).

    Bounded on its own: the drain ends ``seconds + drain`` after the start whatever the
    hub does, then every task is cancelled (at most ``CANCEL_GRACE_S / 2`` waited for)
    and the driver thread is joined for at most as long (it is a daemon: abandoned)."""
    rng = random.Random(seed)
    run.t_start = time.monotonic()
    run.t_end = run.t_start + run.seconds
    stop = threading.Event()
    drive = threading.Thread(
        target=driver, args=(run, data, driver_store, rate, stop), name="driver", daemon=True
    )
    tasks: list[asyncio.Task] = []
    cpu0 = _self_cpu()
    cpu: float | None = None
    try:
        for store in run.stores:
            tasks.append(asyncio.create_task(poll_loop(run, store, random.Random(rng.random()))))
            tasks.append(asyncio.create_task(post_loop(run, store, random.Random(rng.random()))))
        drive.start()
        await asyncio.sleep(max(0.0, run.t_end - time.monotonic()))
        cpu = _self_cpu() - cpu0
        window_end()
        stop.set()
        if dog:
            dog.enter("draining")
        await asyncio.sleep(max(0.0, run.t_end + run.drain - time.monotonic()))
    finally:
        stop.set()
        if cpu is None:
            cpu = _self_cpu() - cpu0
        if dog:
            dog.enter(f"cancelling {len(tasks)} tasks")
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CANCEL_GRACE_S / 4)
            for task in pending:  # cancel again what has not ended, once
                task.cancel()
            if pending:
                _, pending = await asyncio.wait(pending, timeout=CANCEL_GRACE_S / 4)
            run.stuck_tasks = len(pending)
            for task in list(pending)[:3]:  # where they are stuck, for the report
                print(f"a task still running after two cancels: {task!r}", file=sys.stderr)
                task.print_stack(file=sys.stderr)
        if drive.is_alive():
            if dog:
                dog.enter("joining the driver thread")
            drive.join(CANCEL_GRACE_S / 2)
            run.driver_stuck = drive.is_alive()
    return cpu


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- The hub ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(data: Path, n_stores: int, products: int) -> tuple[list[Store], list[str], str]:
    """A seeded hub data folder with ``n_stores`` more stores; (stores, skus, driver id)."""
    db = open_db(data)
    try:
        if db.execute("SELECT count(*) FROM products").fetchone()[0] == 0:
            hub_seed.seed_hub(db, products=products)
        first = db.execute("SELECT count(*) FROM stores").fetchone()[0]
        made = []
        with dbmod.write(db):
            for i in range(n_stores):
                creds = registry.add_store(db, f"Bench store {first + i}", city="Bench")
                made.append(Store(i, creds["id"], creds["secret"]))
        skus = [r[0] for r in db.execute("SELECT sku FROM variants ORDER BY sku LIMIT 200")]
        driver_store = hub_seed.store_seed.DEMO_STORES[0]["id"]
    finally:
        db.close()
    return made, skus, driver_store


class NotReady(Exception):
    """The hub did not answer its status page in time (or exited)."""


def start_hub(data: Path, port: int, threads: int | None, log: Path) -> subprocess.Popen:
    """``kiosk hub serve`` in its own process group (so it can be killed whole)."""
    cmd = [sys.executable, "-m", "app", "hub", "serve", "--data", str(data), "--port", str(port)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(host: str, port: int, within: float, proc: subprocess.Popen | None) -> None:
    """Until ``GET /api/v1/status`` answers 200, at most ``within`` seconds (each try
    bounded: connect and answer within 2 s)."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise NotReady(f"the hub exited ({proc.returncode})")
        try:
            timeout = max(0.1, min(2.0, deadline - time.monotonic()))
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.sendall(b"GET /api/v1/status HTTP/1.0\r\n\r\n")
                head = s.recv(64)
                if b" 200 " in head:
                    return
                last = repr(head[:40])
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise NotReady(f"no 200 from http://{host}:{port}/api/v1/status within {within:g} s ({last})")


def kill_hub(proc: subprocess.Popen) -> None:
    """SIGKILL the hub's process group (it leads its own session), then the hub."""
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


def stop_hub(proc: subprocess.Popen) -> None:
    """SIGTERM the hub's group, SIGKILL it after 5 s (a stopped hub never ends on
    SIGTERM); bounded to ~10 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            os.killpg(proc.pid, signal.SIGCONT)  # a stopped (SIGSTOP) hub gets its SIGTERM
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    kill_hub(proc)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        print(f"the hub (pid {proc.pid}) did not end after SIGKILL", file=sys.stderr)


def proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads of a process, from /proc/<pid>/status."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def raise_fd_limit(needed: int) -> tuple[bool, int]:
    """Raise the soft limit of open files toward ``needed`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard_n = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard_n), hard))
    return needed <= hard_n, hard_n


# --- Figures ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; inf counts (never delivered); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def figures(run: Run, n: int, hub_cpu_s: float | None, gen_cpu_s: float) -> dict[str, Any]:
    deliveries = []
    for tx, commit in run.commits.items():
        got = run.arrivals.get(tx, {})
        deliveries += [max(0.0, t - commit) for t in got.values()]
        deliveries += [math.inf] * (n - len(got))
    posts = run.post_latencies + [math.inf] * len(run.posts_in_flight)
    failed = sum(run.errors.values())
    out: dict[str, Any] = {
        "stores": n,
        "seconds": run.seconds,
        "changes": len(run.commits),
        "deliveries_expected": len(run.commits) * n,
        "delivery_p50_s": percentile(deliveries, 50),
        "delivery_p95_s": percentile(deliveries, 95),
        "never_delivered_share": (
            sum(1 for d in deliveries if d == math.inf) / len(deliveries) if deliveries else None
        ),
        "posts": len(posts),
        "post_p50_s": percentile(posts, 50),
        "post_p95_s": percentile(posts, 95),
        "posts_unanswered": len(run.posts_in_flight),
        "requests": run.requests,
        "failed": failed,
        "error_rate": failed / run.requests if run.requests else 0.0,
        "errors": {k: v for k, v in run.errors.items() if v},
        "error_samples": run.error_samples,
        "hub_cpu_pct": None if hub_cpu_s is None else 100 * hub_cpu_s / run.seconds,
        "loadgen_cpu_pct": 100 * gen_cpu_s / run.seconds,
    }
    return out


def verdict(f: dict[str, Any], hub_threads: int | None) -> str:
    if f.get("skipped"):
        return f"not run: {f['skipped']}"
    why = []
    d95, p95 = f["delivery_p95_s"], f["post_p95_s"]
    if d95 is None:
        why.append("no change made (run too short)")
    elif d95 > DELIVERY_P95_MAX_S:
        why.append(f"delivery p95 {fmt_s(d95)} > {DELIVERY_P95_MAX_S:g} s")
    if f["never_delivered_share"]:
        why.append(f"{100 * f['never_delivered_share']:.1f} % never delivered")
    if p95 is not None and p95 > POST_P95_MAX_S:
        why.append(f"post p95 {fmt_s(p95)}")
    if f["failed"]:
        kinds = ", ".join(f"{k} {v}" for k, v in f["errors"].items())
        why.append(f"{100 * f['error_rate']:.1f} % requests failed ({kinds})")
    if not why:
        return "holds"
    cpu = f["hub_cpu_pct"]
    if cpu is not None and cpu >= 85:
        why.append(f"hub CPU-bound ({cpu:.0f} % of a core)")
    elif hub_threads and f["stores"] >= hub_threads:  # --hub-threads: a waitress hub
        why.append(f"{f['stores']} long-polls for {hub_threads} threads (CPU {cpu or 0:.0f} %)")
    if f["loadgen_cpu_pct"] >= 90:
        why.append(f"load generator CPU-bound too ({f['loadgen_cpu_pct']:.0f} %)")
    return "breaks: " + "; ".join(why)


def fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    if v == math.inf:
        return "never"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| stores | delivery p50 / p95 | never delivered | post p50 / p95 | failed requests "
        "| hub CPU | hub RSS peak | loadgen CPU | verdict |"
    )
    out = [head, "|" + "---|" * 9]
    for f in rows:
        if f.get("skipped"):
            out.append(f"| {f['stores']:,} | | | | | | | | {f['verdict']} |")
            continue
        never = f["never_delivered_share"]
        errs = ", ".join(f"{k} {v}" for k, v in f["errors"].items())
        out.append(
            f"| {f['stores']:,} "
            f"| {fmt_s(f['delivery_p50_s'])} / {fmt_s(f['delivery_p95_s'])} "
            f"| {'-' if never is None else f'{100 * never:.1f} %'} "
            f"| {fmt_s(f['post_p50_s'])} / {fmt_s(f['post_p95_s'])} "
            f"| {100 * f['error_rate']:.1f} % of {f['requests']:,}"
            + (f" ({errs})" if errs else "")
            + " | "
            + ("-" if f["hub_cpu_pct"] is None else f"{f['hub_cpu_pct']:.0f} %")
            + " | "
            + ("-" if not f.get("hub_rss_peak_mb") else f"{f['hub_rss_peak_mb']:.0f} MB")
            + f" | {f['loadgen_cpu_pct']:.0f} % | {f['verdict']} |"
        )
    return "\n".join(out)


# --- Main -------------------------------------------------------------------------------


def measure(n: int, args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One count, under a hard deadline (see :class:`Watchdog`)."""
    budget = args.start_allowance + args.seconds + args.drain + CANCEL_GRACE_S
    partial: dict[str, Any] = {"stores": n}

    def give_up(phase: str) -> None:  # the watchdog's last word: print what there is
        run = partial.get("run")
        f: dict[str, Any] = {"stores": n, "skipped": "no figures"}
        if run is not None:
            f = figures(run, n, None, 0.0)  # what the stores saw until now
            f["loadgen_cpu_pct"] = 100 * _self_cpu() / max(run.seconds, 1e-9)
        f["verdict"] = (
            f"{DID_NOT_FINISH}: stuck while {phase}; the harness did not come back (exit 3)"
        )
        print(f"[{n} stores] {f['verdict']}", file=sys.stderr)
        print(table([*rows, f]))

    dog = Watchdog(time.monotonic() + budget, WATCHDOG_GRACE_S, give_up)
    try:
        f = _measure(n, args, dog, partial)
    finally:
        dog.disarm()
    if dog.expired_in is not None and not f["verdict"].startswith(DID_NOT_FINISH):
        f["verdict"] = f"{DID_NOT_FINISH}: stuck while {dog.expired_in}; " + f["verdict"]
    return f


def _measure(
    n: int, args: argparse.Namespace, dog: Watchdog, partial: dict[str, Any]
) -> dict[str, Any]:
    ok, hard = raise_fd_limit(FDS_PER_STORE * n + FDS_SPARE)
    if not ok:
        f = {
            "stores": n,
            "skipped": f"needs ~{FDS_PER_STORE * n + FDS_SPARE} file descriptors, "
            f"the hard limit is {hard}",
        }
        f["verdict"] = verdict(f, args.hub_threads)
        return f
    tmp = Path(tempfile.mkdtemp(prefix="hub-scale-"))
    proc = None
    try:
        if args.hub_url:
            data = args.hub_data
            parts = urlsplit(args.hub_url)
            host, port, pid = parts.hostname or "127.0.0.1", parts.port or 80, args.hub_pid
        else:
            data, host, port = tmp / "hub", "127.0.0.1", free_port()
        t = time.monotonic()
        dog.enter("seeding")
        stores, skus, driver_store = seed(data, n, args.products)
        print(f"[{n} stores] seeded in {time.monotonic() - t:.1f} s", file=sys.stderr)
        if not args.hub_url:
            dog.enter("starting the hub")
            proc = dog.hub = start_hub(data, port, args.hub_threads, tmp / "hub.log")
            pid = proc.pid
            print(f"[{n} stores] hub pid {pid}", file=sys.stderr, flush=True)
        dog.enter(f"waiting for the hub's status page on {host}:{port}")
        allowance = max(0.0, args.start_allowance - (time.monotonic() - t))
        try:
            wait_ready(host, port, allowance, proc)
        except NotReady as exc:
            f = {"stores": n, "skipped": str(exc)}
            f["verdict"] = f"{DID_NOT_FINISH}: start-up: {exc}"
            if proc is not None:
                f["hub_log_tail"] = (tmp / "hub.log").read_text(errors="replace")[-1000:]
            return f
        print(f"[{n} stores] hub ready in {time.monotonic() - t:.1f} s", file=sys.stderr)
        db = dbmod.connect(db_path(data))
        start_cursor = str(changes.last_seq(db))
        db.close()
        run = Run(
            stores=stores,
            skus=skus,
            host=host,
            port=port,
            seconds=args.seconds,
            drain=args.drain,
            post_every=args.post_every,
            wait=args.wait,
            start_cursor=start_cursor,
        )
        cpu0 = proc_cpu_s(pid) if pid else None
        rss_peak = [0]
        sampling = threading.Event()

        def sample() -> None:  # VmRSS every 0.5 s (VmHWM is only read at the end)
            while not sampling.wait(0.5):
                rss_peak[0] = max(rss_peak[0], proc_status(pid).get("VmRSS", 0))

        sampler = threading.Thread(target=sample, daemon=True)
        if pid:
            sampler.start()
        cpu1: list[float | None] = [None]

        def window_end() -> None:  # the hub's CPU over the loaded window, not the drain
            cpu1[0] = proc_cpu_s(pid) if pid else None

        partial["run"] = run
        dog.enter(f"loading ({n} stores, {args.seconds:g} s)")
        # Not asyncio.run: its clean-up waits, without a bound, for tasks that have not
        # ended; load() bounds its own wait and a loop closed with a task still pending
        # only warns.
        loop = asyncio.new_event_loop()
        try:
            gen_cpu = loop.run_until_complete(
                load(run, data, driver_store, args.changes_per_s, args.seed, window_end, dog)
            )
        finally:
            loop.close()
        dog.enter("collecting the figures")
        status = proc_status(pid) if pid else {}
        sampling.set()
        hub_cpu = None if cpu0 is None or cpu1[0] is None else cpu1[0] - cpu0
        f = figures(run, n, hub_cpu, gen_cpu)
        f["hub_rss_peak_mb"] = max(status.get("VmHWM", 0), rss_peak[0]) / 1024 or None
        f["hub_threads"] = status.get("Threads")
        f["verdict"] = verdict(f, args.hub_threads)
        stuck = []
        if run.stuck_tasks:
            stuck.append(f"{run.stuck_tasks} tasks did not end when cancelled")
        if run.driver_stuck:
            stuck.append("the driver thread was still in apply_batch")
        if stuck:
            f["verdict"] = f"{DID_NOT_FINISH}: " + "; ".join(stuck) + "; " + f["verdict"]
        if proc is not None and proc.poll() is not None:
            f["verdict"] += f" (the hub exited: {proc.returncode})"
        return f
    finally:
        if proc is not None:
            dog.enter("stopping the hub")
            stop_hub(proc)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Simulated stores against a real hub: how many can it serve?"
    )
    p.add_argument("--stores", default="10,40", help="store counts, comma-separated")
    p.add_argument("--seconds", type=float, default=20, help="loaded seconds per count")
    p.add_argument("--drain", type=float, default=5, help="seconds to deliver after the load")
    p.add_argument("--backend", default="sqlite", help="the hub's database: sqlite (today)")
    p.add_argument("--workers", type=int, default=1, help="hub processes: 1 (today)")
    p.add_argument("--hub-threads", type=int, default=None, help="kiosk hub serve --threads")
    p.add_argument("--hub-url", help="measure a hub already running (needs --hub-data)")
    p.add_argument("--hub-data", type=Path, help="that hub's data folder (stores are added)")
    p.add_argument("--hub-pid", type=int, help="that hub's pid (for its CPU and RSS)")
    p.add_argument(
        "--post-every", type=float, default=20, help="seconds between a store's posts (0: none)"
    )
    p.add_argument("--changes-per-s", type=float, default=0.5, help="driver changes per second")
    p.add_argument("--wait", type=int, default=PULL_WAIT_S, help="long-poll wait (s)")
    p.add_argument("--products", type=int, default=50, help="catalog size of the seeded hub")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--start-allowance",
        type=float,
        default=60,
        help="seconds for seeding, hub start-up and its first status answer (part of the "
        "per-count hard deadline: this + --seconds + --drain + 10 s)",
    )
    p.add_argument("--json", type=Path, help="write the figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary hub folder")
    args = p.parse_args(argv)
    if args.backend != "sqlite":
        p.exit(
            2,
            f"error: the hub serves SQLite with one process today; --backend {args.backend} "
            "comes with issue 11\n",
        )
    if args.workers != 1:
        p.exit(
            2,
            "error: the hub serves SQLite with one process today; --workers comes with issue 11\n",
        )
    if args.hub_url:
        host = urlsplit(args.hub_url).hostname
        if host not in ("127.0.0.1", "localhost"):
            p.error("--hub-url must be on 127.0.0.1")
        if not args.hub_data:
            p.error("--hub-url needs --hub-data (stores are registered and changes made there)")
    try:
        args.counts = [int(x) for x in args.stores.split(",") if x.strip()]
    except ValueError:
        p.error("--stores: comma-separated integers")
    if not args.counts or min(args.counts) < 1 or args.seconds <= 0 or args.changes_per_s <= 0:
        p.error("--stores, --seconds and --changes-per-s must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[dict[str, Any]] = []
    for n in args.counts:
        f = measure(n, args, rows)
        rows.append(f)
        print(f"[{n} stores] {f['verdict']}", file=sys.stderr, flush=True)
    threads = args.hub_threads or HUB_DEFAULT_THREADS
    server = f"--threads {args.hub_threads}" if args.hub_threads else "gevent (the default)"
    print(
        f"\nhub: {args.backend}, {args.workers} process, {server}; "
        f"{args.seconds:g} s per count + {args.drain:g} s drain; a post every "
        f"~{args.post_every:g} s per store, {args.changes_per_s:g} change/s to every store"
    )
    print(table(rows))
    if args.json:
        doc = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "backend": args.backend,
            "workers": args.workers,
            "hub_threads": threads,
            "seconds": args.seconds,
            "drain": args.drain,
            "post_every_s": args.post_every,
            "changes_per_s": args.changes_per_s,
            "cpus": os.cpu_count(),
            "runs": rows,
        }
        args.json.write_text(json.dumps(_finite(doc), indent=2, allow_nan=False) + "\n")
    return 1 if any(r["verdict"].startswith(DID_NOT_FINISH) for r in rows) else 0


def _finite(value: Any) -> Any:
    """JSON has no infinity: a latency never reached is written "never"."""
    if isinstance(value, float) and math.isinf(value):
        return "never"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
