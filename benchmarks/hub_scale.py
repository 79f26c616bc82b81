"""How many stores can one hub serve? (issue 11)

Starts a real hub (``kiosk hub serve`` on a free 127.0.0.1 port, data in a temporary
folder, a small catalog and N registered stores) and simulates the N stores on asyncio,
without a thread per store. Each simulated store does what the store's sync worker does
(app/store/sync/worker.py, pull.py, client.py), signing every request as
docs/protocol.md says (app/core/signing.py):

- long-polls ``GET /api/v1/changes?since=CURSOR&wait=25&limit=2000`` from its cursor
  (``wait=0`` while the hub says ``more``), a read timeout of ``wait + 10`` s;
- posts a small batch (1 to 3 ``stock.movement``) every ``--post-every`` seconds,
  jittered (0.5x to 1.5x), one batch at a time, a failed batch sent again;
- after a failure, waits as the store does (app/store/sync/backoff.py: full jitter,
  ``Retry-After`` honoured on 429/503).

The stores start as stores already in sync: their cursor is the hub's newest seq.

The hub's database (``--backend``): ``sqlite``, the embedded default (``DATA/hub.db``),
or ``postgresql``: a throwaway cluster of Debian's PostgreSQL started for the run in a
temporary folder (tests/pg.py: the unprivileged ``postgres`` user, 127.0.0.1, fsync,
synchronous_commit and full_page_writes off, as fits a cluster thrown away after the
run; ``max_connections`` sized for the workers' pools), a database per store count,
seeded, the hub started with ``--database URL``; or, with ``--database URL``, a
database of yours (stores are added to it). The cluster is stopped at the end, on
errors and at the hard deadline too. ``--workers W`` is passed to ``kiosk hub serve``
(W forked gevent workers sharing the port), ``--db-pool`` too.

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
the hub's CPU (% of one core, summed over its whole process tree: the supervisor and
its workers, /proc/<pid>/stat over the loaded window) and peak RSS (the tree's summed
VmRSS, sampled, and its PSS, which counts pages the forked workers share once); on
PostgreSQL the database server's CPU (its process tree: postmaster and backends); the
load generator's own CPU (it shares the machine's cores with the hub) and the whole
machine's (/proc/stat: what else ran); and a verdict: "holds" when delivery p95 <= 2 s,
post p95 <= 2 s, nothing undelivered and no failed request, else "breaks: why", naming
what stops it (hub CPU, database CPU, the cores saturated, errors by kind, file
descriptors, the load generator's CPU).

The load generator is this process, plus (``--loadgen-procs``, by default as many as
the open-files limit needs: each store holds two sockets) more processes of the same
code, each simulating a share of the stores; they start together and report back.

Bounded: each N stops by itself after ``--seconds`` plus ``--drain`` (no new post nor
change during the drain; requests still open at its end are abandoned, not counted as
errors); it only talks to 127.0.0.1; file descriptors are raised with setrlimit within
the hard limit, and an N that would need more (or more loopback ports than the
ephemeral range has) is not run (said so in its verdict).

Whatever the hub does, each N also has a hard deadline: ``--start-allowance`` (starting
PostgreSQL, seeding, start-up, readiness) + ``--seconds`` + ``--drain`` + a few seconds
to cancel. The load's own event loop stops at its part of it (every task cancelled, the
driver abandoned), and a watchdog thread backs it: at the deadline it dumps every
thread's stack (faulthandler), kills the hub this harness started (its process group,
by pid) and the load generator's other processes and, if the harness has not come back
within ``WATCHDOG_GRACE_S``, prints what it has, stops the PostgreSQL cluster it started
and exits 3. An N that did not finish gets the verdict "did not finish: <phase it was
in>", and the harness exits 1 after the other counts.

    .venv/bin/python benchmarks/hub_scale.py --stores 10,40,100,250 --seconds 25
    .venv/bin/python benchmarks/hub_scale.py --stores 40 --seconds 20 --json /tmp/hub.json
    .venv/bin/python benchmarks/hub_scale.py --stores 1000,5000 --backend postgresql \
        --workers 4 --seconds 30 --start-allowance 180
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
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.signing import sign_request  # noqa: E402
from app.demo import hub_seed  # noqa: E402
from app.hub import database as hdb  # noqa: E402
from app.hub.domain import changes, registry  # noqa: E402
from app.hub.protocol.transactions import apply_batch  # noqa: E402
from app.hub.storage import DEFAULT_POOL_SIZE as DEFAULT_DB_POOL  # noqa: E402
from app.hub.storage import db_path, describe, open_database  # noqa: E402
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
HUB_FDS_SPARE = 100  # a hub worker's own files, its database connections
SHARD_LEAD_S = 0.3  # from the other load processes' "ready" to the load's start
SHARD_READY_S = 60.0  # at most this for them to start (import, read their stores)
CPU_BOUND_PCT = 85  # a process at this share of one core is CPU-bound
MACHINE_BUSY_PCT = 85  # the machine's cores are saturated at this share of all of them
CLK_TCK = os.sysconf("SC_CLK_TCK")
CANCEL_GRACE_S = 10.0  # after the drain: tasks cancelled, the driver joined, the hub stopped
WATCHDOG_GRACE_S = 15.0  # after the deadline: the harness must be back, or it exits 3
DID_NOT_FINISH = "did not finish"


# --- The hard deadline ------------------------------------------------------------------


class Watchdog:
    """A per-N hard deadline kept by a thread, whatever the main thread is blocked on.

    ``phase`` says where the harness is (set as it goes). At ``deadline`` the watchdog
    notes the phase, dumps every thread's stack to stderr, kills the hub's process group
    (only a hub this harness started) and the load generator's other processes
    (``shards``), and waits ``grace`` seconds for :meth:`disarm`; then it calls
    ``on_give_up(phase)`` (which prints what there is), stops the PostgreSQL cluster
    this harness started (``cluster``, bounded), removes the count's temporary
    ``folder`` and exits 3."""

    def __init__(self, deadline: float, grace: float, on_give_up: Any) -> None:
        self.deadline = deadline  # monotonic
        self.grace = grace
        self.on_give_up = on_give_up
        self.phase = "starting"
        self.expired_in: str | None = None  # the phase at the deadline, once expired
        self.hub: subprocess.Popen | None = None
        self.shards: list[subprocess.Popen] = []
        self.cluster: Any = None  # a tests.pg.PgCluster this harness started
        self.folder: Path | None = None  # the count's temporary folder (removed)
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
        for shard in self.shards:
            kill_hub(shard)
        if self._done.wait(self.grace):
            return
        try:
            self.on_give_up(self.phase)
        finally:
            sys.stderr.flush()
            sys.stdout.flush()
            if self.cluster is not None:
                kill_cluster(self.cluster)
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
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
    driver_store: str = ""  # the driver's changes: what delivery is measured on
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
    window_s: float = 0.0  # the loaded window as it was (ends late on a busy generator)
    shard_failures: list[str] = field(default_factory=list)  # other load processes lost
    driver_stuck: bool = False  # the driver thread still in apply_batch at the end

    def failed(self, kind: str, detail: str = "") -> None:
        self.errors[kind] += 1
        self.error_samples.setdefault(kind, detail)


def retry_after(hdrs: dict[str, str]) -> float | None:
    value = hdrs.get("retry-after", "")
    return float(value) if value.isdigit() else None


class PageReader:
    """A feed page's ``cursor``, ``more`` and the tx ids of the driver's stock changes
    in it, read without decoding every change when the page is laid out as the hub
    writes it (``{"changes":[...],"cursor":...}``): with 1,000 stores each page holds
    every store's stock changes, and decoding them all was most of the load generator's
    CPU. Anything else (another layout, a driver change written otherwise) is decoded
    in full, so what is counted is the same either way (tests check both agree)."""

    def __init__(self, driver_store: str) -> None:
        self.driver = driver_store
        self.marker = b'"store_id":' + json.dumps(driver_store).encode()
        # The driver's stock data as the hub stores it (compact, store_id before tx,
        # flat): one match per marker, else the page is decoded in full.
        self.tx_re = re.compile(re.escape(self.marker) + rb'[^{}]*?"tx":"([^"\\]*)"')

    def read(self, data: bytes) -> tuple[str, bool, list[str]]:
        i = data.rfind(b'],"cursor":')
        if data.startswith(b'{"changes":[') and i > 0:
            try:
                tail = json.loads(b"{" + data[i + 2 :])
            except ValueError:
                tail = None
            if isinstance(tail, dict) and "cursor" in tail:
                body = data[:i]
                marks = body.count(self.marker)
                txs = self.tx_re.findall(body) if marks else []
                if len(txs) == marks:
                    return tail["cursor"], bool(tail.get("more")), [t.decode() for t in txs]
        return self.read_fully(data)

    def read_fully(self, data: bytes) -> tuple[str, bool, list[str]]:
        page = json.loads(data)
        txs = []
        for change in page["changes"]:
            if change["kind"] == "stock":
                got = change["data"]
                if got.get("store_id") == self.driver and got.get("tx"):
                    txs.append(got["tx"])
        return page["cursor"], bool(page.get("more")), txs


async def poll_loop(run: Run, store: Store, rng: random.Random) -> None:
    """The store's pull loop: long-poll from its cursor, apply (here: note) each page."""
    conn = Conn(run.host, run.port)
    reader = PageReader(run.driver_store)
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
                    cursor, more, txs = reader.read(data)
                    for tx in txs:
                        run.arrivals.setdefault(tx, {}).setdefault(store.index, now)
                    wait = 0 if more else run.wait
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


def driver(
    run: Run, target: str | Path, data: Path, store_id: str, rate: float, stop: threading.Event
) -> None:
    """Changes at the hub at a steady rate, each recorded with its commit instant."""
    db = hdb.connect(target)
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
            run.arrivals.setdefault(tx, {})
            run.commits[tx] = time.monotonic()  # provisional: a store may see it first
            result = apply_batch(db, store_id, [item], data_dir=data)[0]
            run.commits[tx] = time.monotonic()  # the commit has returned
            if result["status"] != "accepted":
                raise RuntimeError(f"driver change refused: {result}")
            k += 1
    finally:
        db.close()


async def load(
    run: Run,
    target: str | Path | None,
    data: Path | None,
    rate: float,
    seed: int,
    window_start: Any,
    window_end: Any,
    dog: Watchdog | None = None,
) -> float:
    """Run the stores (and, with a ``target`` database, the driver) from ``run.t_start``
    (now when unset); return this process's CPU seconds over the loaded window
    (``window_start()`` / ``window_end()`` are called as it starts and ends, before the
    drain).

    Bounded on its own: the drain ends ``seconds + drain`` after the start whatever the
    hub does, then every task is cancelled (at most ``CANCEL_GRACE_S / 2`` waited for)
    and the driver thread is joined for at most as long (it is a daemon: abandoned)."""
    if not run.t_start:
        run.t_start = time.monotonic()
    run.t_end = run.t_start + run.seconds
    stop = threading.Event()
    drive = None
    if target is not None and data is not None:
        drive = threading.Thread(
            target=driver,
            args=(run, target, data, run.driver_store, rate, stop),
            name="driver",
            daemon=True,
        )
    tasks: list[asyncio.Task] = []
    cpu0 = _self_cpu()
    cpu: float | None = None
    try:
        await asyncio.sleep(max(0.0, run.t_start - time.monotonic()))  # the others' start
        window_start()
        cpu0, w0 = _self_cpu(), time.monotonic()
        for store in run.stores:
            rng_poll = random.Random(f"{seed}/{store.index}/poll")
            rng_post = random.Random(f"{seed}/{store.index}/post")
            tasks.append(asyncio.create_task(poll_loop(run, store, rng_poll)))
            tasks.append(asyncio.create_task(post_loop(run, store, rng_post)))
        if drive is not None:
            drive.start()
        await asyncio.sleep(max(0.0, run.t_end - time.monotonic()))
        cpu = _self_cpu() - cpu0
        run.window_s = time.monotonic() - w0
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
        if drive is not None and drive.is_alive():
            if dog:
                dog.enter("joining the driver thread")
            drive.join(CANCEL_GRACE_S / 2)
            run.driver_stuck = drive.is_alive()
    return cpu


# --- The load generator's other processes ----------------------------------------------

SHARD_FLAG = "--shard"  # hub_scale.py --shard SPEC.json RESULT.json: one share of stores


def start_shards(run: Run, groups: list[list[Store]], seed_: int, folder: Path) -> list[Any]:
    """One process per group of stores (this file with ``--shard``), each in its own
    session (killed whole by pid). Each says "ready" once started, then waits for the
    instant the load starts (:func:`go_shards`). Returns ``[(process, result path,
    stores)]``."""
    shards = []
    for i, group in enumerate(groups):
        spec = {
            "stores": [[s.index, s.id, s.secret] for s in group],
            "skus": run.skus,
            "host": run.host,
            "port": run.port,
            "seconds": run.seconds,
            "drain": run.drain,
            "post_every": run.post_every,
            "wait": run.wait,
            "start_cursor": run.start_cursor,
            "driver_store": run.driver_store,
            "seed": seed_,
        }
        spec_path, result_path = folder / f"shard-{i}.json", folder / f"shard-{i}.out.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), SHARD_FLAG]
            + [str(spec_path), str(result_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        shards.append((proc, result_path, group))
    return shards


def go_shards(shards: list[Any], within: float) -> float:
    """Wait (at most ``within`` s) until every other load process says "ready", then
    tell them all when the load starts; return that instant (monotonic)."""
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as sel:
        for proc, _, _ in shards:
            sel.register(proc.stdout, selectors.EVENT_READ, proc)
        waiting = len(shards)
        while waiting:
            left = deadline - time.monotonic()
            events = sel.select(max(0.0, left)) if left > 0 else []
            if not events:
                raise NotReady(f"{waiting} load generator processes not ready in {within:.0f} s")
            for key, _ in events:
                line = key.fileobj.readline()
                if line.strip() != "ready":
                    raise NotReady(
                        f"a load generator process said {line!r} (exit {key.data.poll()})"
                    )
                sel.unregister(key.fileobj)
                waiting -= 1
    t_start = time.monotonic() + SHARD_LEAD_S
    for proc, _, _ in shards:
        proc.stdin.write(f"{t_start!r}\n")
        proc.stdin.close()
    return t_start


def shard_main(spec_path: str, result_path: str) -> int:
    """A share of the stores, in a process of its own (see :func:`start_shards`)."""
    # Its own bound, whatever happens: SIGALRM ends it (the parent's watchdog kills it too).
    signal.alarm(int(SHARD_READY_S) + 1)
    spec = json.loads(Path(spec_path).read_text())
    stores = [Store(*s) for s in spec["stores"]]
    raise_fd_limit(FDS_PER_STORE * len(stores) + FDS_SPARE)
    print("ready", flush=True)
    t_start = float(sys.stdin.readline())
    budget = t_start - time.monotonic() + spec["seconds"] + spec["drain"]
    signal.alarm(int(budget + CANCEL_GRACE_S) + 1)
    run = Run(
        stores=stores,
        skus=spec["skus"],
        host=spec["host"],
        port=spec["port"],
        seconds=spec["seconds"],
        drain=spec["drain"],
        post_every=spec["post_every"],
        wait=spec["wait"],
        start_cursor=spec["start_cursor"],
        driver_store=spec["driver_store"],
        t_start=t_start,
    )
    loop = asyncio.new_event_loop()
    try:
        cpu = run_in_loop(
            loop, load(run, None, None, 0.0, spec["seed"], lambda: None, lambda: None)
        )
    finally:
        loop.close()
    result = {
        "arrivals": run.arrivals,
        "post_latencies": run.post_latencies,
        "posts_in_flight": run.posts_in_flight,
        "requests": run.requests,
        "errors": run.errors,
        "error_samples": run.error_samples,
        "stuck_tasks": run.stuck_tasks,
        "cpu_s": cpu,
        "window_s": run.window_s,
    }
    Path(result_path).write_text(json.dumps(result))
    return 0


def collect_shards(run: Run, shards: list[Any], until: float) -> list[float]:
    """Wait for the other processes (at most until ``until``, monotonic), merge what
    their stores saw into ``run``; return each one's CPU share of one core over its
    window (a process that did not report is killed and said so in
    ``run.shard_failures``)."""
    cpus = []
    for proc, result_path, group in shards:
        try:
            proc.wait(max(0.1, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_hub(proc)
            proc.wait(5)
        try:
            result = json.loads(result_path.read_text())
        except (OSError, ValueError):
            run.shard_failures.append(
                f"a load generator process ({len(group)} stores) did not report "
                f"(exit {proc.returncode})"
            )
            for store in group:  # what it saw is lost: count its stores' posts as open
                run.posts_in_flight.setdefault(store.index, run.t_end)
            continue
        for tx, got in result["arrivals"].items():
            mine = run.arrivals.setdefault(tx, {})
            for index, t in got.items():
                mine.setdefault(int(index), t)
        run.post_latencies += result["post_latencies"]
        for index, t in result["posts_in_flight"].items():
            run.posts_in_flight[int(index)] = t
        run.requests += result["requests"]
        for kind, count in result["errors"].items():
            run.errors[kind] += count
        for kind, sample in result["error_samples"].items():
            run.error_samples.setdefault(kind, sample)
        run.stuck_tasks += result["stuck_tasks"]
        cpus.append(result["cpu_s"] / max(result["window_s"] or run.seconds, 1e-9))
    return cpus


def run_in_loop(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    """``loop.run_until_complete(coro)``, where SIGINT and SIGTERM cancel it (so its own
    clean-up runs, bounded) and then end the harness as they would have (the hub and the
    PostgreSQL cluster are stopped by the callers' finally clauses)."""
    task = loop.create_task(coro)
    got: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(sig: int) -> None:
        got.append(sig)
        task.cancel()

    for sig in previous:
        loop.add_signal_handler(sig, stop, sig)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if got and got[0] == signal.SIGINT:
            raise KeyboardInterrupt from None
        if got:
            raise SystemExit(128 + got[0]) from None
        raise
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- The hub ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(target: str | Path, n_stores: int, products: int) -> tuple[list[Store], list[str], str]:
    """A seeded hub database (``DATA/hub.db`` or a PostgreSQL URL) with ``n_stores`` more
    stores; (stores, skus, driver id)."""
    db = open_database(target)
    try:
        if hdb.scalar(db, "SELECT count(*) FROM products") == 0:
            hub_seed.seed_hub(db, products=products)
        first = hdb.scalar(db, "SELECT count(*) FROM stores")
        made = []
        with hdb.write(db):
            for i in range(n_stores):
                creds = registry.add_store(db, f"Bench store {first + i}", city="Bench")
                made.append(Store(i, creds["id"], creds["secret"]))
        skus = [r["sku"] for r in hdb.rows(db, "SELECT sku FROM variants ORDER BY sku LIMIT 200")]
        driver_store = hub_seed.store_seed.DEMO_STORES[0]["id"]
    finally:
        db.close()
    return made, skus, driver_store


def pg_settings(args: argparse.Namespace) -> dict[str, str]:
    """The throwaway cluster's settings on top of tests/pg.py's (fsync,
    synchronous_commit and full_page_writes off there): connections for every worker's
    pool plus its LISTEN connection, the driver's and a margin; more shared buffers."""
    pool = args.db_pool or DEFAULT_DB_POOL
    return {
        "max_connections": str(max(300, args.workers * (pool + 2) + 50)),
        "shared_buffers": "256MB",
        "max_wal_size": "2GB",
        "checkpoint_timeout": "30min",
    }


def start_pg(args: argparse.Namespace, dog: Watchdog) -> Any:
    """The throwaway PostgreSQL cluster (tests/pg.py), once per harness run."""
    from tests.pg import start_cluster

    settings = pg_settings(args)
    cluster = start_cluster(settings)
    dog.cluster = cluster
    print(
        f"PostgreSQL cluster on 127.0.0.1:{cluster.port} (pid {cluster.process.pid}; "
        f"{', '.join(f'{k}={v}' for k, v in settings.items())})",
        file=sys.stderr,
        flush=True,
    )
    return cluster


def kill_cluster(cluster: Any) -> None:
    """Stop a cluster at once (the watchdog's last act): ``pg_ctl stop -m immediate``
    bounded to a few seconds, then its process group killed, its folder removed."""
    from tests.pg import _as_user, pg_bin

    try:
        subprocess.run(
            _as_user(
                cluster.os_user,
                [str(pg_bin() / "pg_ctl"), "stop", "-D", str(cluster.data), "-m", "i", "-w"],
            ),
            capture_output=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        pass
    if cluster.process is not None:
        kill_hub(cluster.process)  # postgres leads its own session, started by us
    shutil.rmtree(cluster.folder, ignore_errors=True)


def stop_cluster(cluster: Any) -> None:
    """Stop it cleanly (``pg_ctl stop -m fast``), or at once if that fails."""
    try:
        cluster.stop()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"stopping PostgreSQL: {exc}; killing it", file=sys.stderr)
    if cluster.process is not None:
        try:
            cluster.process.wait(10)
        except subprocess.TimeoutExpired:
            kill_cluster(cluster)
            cluster.process.wait(5)
    shutil.rmtree(cluster.folder, ignore_errors=True)


class NotReady(Exception):
    """The hub did not answer its status page in time (or exited)."""


def start_hub(
    data: Path,
    port: int,
    threads: int | None,
    log: Path,
    *,
    database: str | None = None,
    workers: int = 1,
    db_pool: int | None = None,
    hub_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """``kiosk hub serve`` in its own process group (so it can be killed whole), its
    environment this one's without ``KIOSK_*`` (the options say it all), plus ``hub_env``."""
    cmd = [sys.executable, "-m", "app", "hub", "serve", "--data", str(data), "--port", str(port)]
    if threads:
        cmd += ["--threads", str(threads)]
    if database:
        cmd += ["--database", database]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    if db_pool:
        cmd += ["--db-pool", str(db_pool)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIOSK_")}
    env.update(hub_env or {})
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


def wait_workers(pid: int, workers: int, within: float) -> None:
    """Until the hub's supervisor has forked its ``workers`` (at most ``within`` s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if len(tree_pids(pid, proc_table())) >= workers + 1:
            return
        time.sleep(0.1)
    raise NotReady(f"the hub did not fork its {workers} workers within {within:.0f} s")


def proc_fd_limit(pid: int) -> int | None:
    """A process's soft limit of open files (/proc/<pid>/limits)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


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


def proc_table() -> dict[int, tuple[int, float]]:
    """Every process: pid -> (ppid, CPU seconds: its own plus its reaped children's)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # ppid; utime, stime, cutime, cstime (a worker that died and was waited for is
        # in its parent's cutime/cstime: summing the live tree counts everything once)
        out[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / CLK_TCK)
    return out


def tree_pids(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    """``root`` and its descendants (live ones) in ``table``."""
    if root not in table:
        return []
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def tree_cpu(root: int | None, table: dict[int, tuple[int, float]]) -> dict[int, float] | None:
    """CPU seconds of each process of ``root``'s tree (None: no such process)."""
    if not root:
        return None
    pids = tree_pids(root, table)
    return {pid: table[pid][1] for pid in pids} if pids else None


def cpu_delta(a: dict[int, float] | None, b: dict[int, float] | None) -> tuple[float, float]:
    """(the tree's CPU seconds between two readings, its busiest process's)."""
    if a is None or b is None:
        return math.nan, math.nan
    total = sum(b.values()) - sum(a.values())  # one that died is in its parent's cutime now
    each = [v - a.get(pid, 0.0) for pid, v in b.items()]
    return total, max(each, default=0.0)


def machine_cpu_s() -> tuple[float, float] | None:
    """Busy CPU seconds of the whole machine so far (/proc/stat, every core summed), and
    of them the kernel's interrupt work (irq, softirq: loopback networking mostly, which
    no process's own time includes)."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is in user already)
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / CLK_TCK, (values[5] + values[6]) / CLK_TCK


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


def proc_pss_kb(pid: int) -> int:
    """Proportional set size (kB): shared pages divided among their sharers."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_memory(root: int) -> dict[str, int]:
    """Summed over ``root``'s tree: VmRSS, VmHWM, PSS (kB), Threads, and processes."""
    pids = tree_pids(root, proc_table())
    out = {"VmRSS": 0, "VmHWM": 0, "Pss": 0, "Threads": 0, "processes": len(pids)}
    for pid in pids:
        status = proc_status(pid)
        for key in ("VmRSS", "VmHWM", "Threads"):
            out[key] += status.get(key, 0)
        out["Pss"] += proc_pss_kb(pid)
    return out


def raise_fd_limit(needed: int) -> tuple[bool, int]:
    """Raise the soft limit of open files toward ``needed`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard_n = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard_n), hard))
    return needed <= hard_n, hard_n


class DbSampler:
    """What the hub's PostgreSQL connections are doing, every 0.5 s over the loaded
    window (pg_stat_activity and pg_locks, from a connection of its own): how many are
    open, running, idle inside a transaction, waiting for the hub-wide write lock (the
    advisory lock of ``hdb.write``), for another advisory lock, for another lock."""

    KINDS = ("connections", "active", "idle_in_tx", "write_lock", "other_advisory", "other_lock")
    QUERY = """
        SELECT a.state, a.wait_event_type, l.classid, l.objid, left(a.query, 60)
        FROM pg_stat_activity a
        LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
        WHERE a.backend_type = 'client backend' AND a.datname = current_database()
          AND a.pid <> pg_backend_pid()
    """

    def __init__(self, url: str, run: Run) -> None:
        self.url, self.run = url, run
        self.samples: list[dict[str, int]] = []
        self.in_tx: dict[str, int] = defaultdict(int)  # last statement of those idle in a tx
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="db-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psycopg

        write_key = hdb.lock_key(hdb.WRITE_LOCK) & 0xFFFFFFFF  # pg_locks.objid is an oid
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=5, options="-c statement_timeout=2000"
            )
        except psycopg.Error as exc:
            self.error = str(exc)
            return
        try:
            while not self._stop.wait(0.5):
                now = time.monotonic()
                if not (self.run.t_start and self.run.t_start <= now <= self.run.t_end):
                    continue
                counts = dict.fromkeys(self.KINDS, 0)
                for state, wait_type, classid, objid, query in conn.execute(self.QUERY):
                    counts["connections"] += 1
                    counts["active"] += state == "active"
                    if (state or "").startswith("idle in transaction"):
                        counts["idle_in_tx"] += 1  # the hub holds it between statements
                        self.in_tx[" ".join((query or "").split())] += 1
                    if classid == hdb.LOCK_NAMESPACE and objid is not None:
                        counts["write_lock" if objid == write_key else "other_advisory"] += 1
                    elif wait_type == "Lock":
                        counts["other_lock"] += 1
                self.samples.append(counts)
        except psycopg.Error as exc:
            self.error = str(exc)
        finally:
            conn.close()

    def stop(self) -> dict[str, Any]:
        """``{kind: {"avg", "max"}}`` over the samples (and ``error`` if it failed)."""
        self._stop.set()
        self._thread.join(5)
        out: dict[str, Any] = {"samples": len(self.samples)}
        for kind in self.KINDS:
            values = [c[kind] for c in self.samples] or [0]
            out[kind] = {"avg": round(sum(values) / len(values), 1), "max": max(values)}
        top = sorted(self.in_tx.items(), key=lambda kv: -kv[1])[:5]
        out["idle_in_tx_last_statements"] = dict(top)
        if self.error:
            out["error"] = self.error
        return out


def ephemeral_ports() -> int:
    """How many local ports the kernel hands out to connections (each store holds two,
    all to the hub's one address)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(high) - int(low) + 1
    except (OSError, ValueError):
        return 28232  # Linux's default range, 32768-60999


def plan_load(n: int, procs: int) -> tuple[int, str | None]:
    """How many load generator processes simulate ``n`` stores (``procs``, or with 0 as
    few as the open-files limit allows), and why ``n`` cannot run (None: it can)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = hard if hard != resource.RLIM_INFINITY else 1 << 20
    per_proc = max(1, (hard - FDS_SPARE) // FDS_PER_STORE)  # stores one process can hold
    procs = procs or math.ceil(n / per_proc)
    if FDS_PER_STORE * n > ephemeral_ports() - 1000:
        return procs, (
            f"needs {FDS_PER_STORE * n:,} connections to one address, the loopback port "
            f"range has {ephemeral_ports():,}"
        )
    share = math.ceil(n / procs)
    if FDS_PER_STORE * share + FDS_SPARE > hard:
        return procs, (
            f"needs ~{FDS_PER_STORE * share + FDS_SPARE} file descriptors in each of "
            f"{procs} load processes, the hard limit is {hard}"
        )
    return procs, None


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


# --- Figures ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; inf counts (never delivered); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def figures(
    run: Run, n: int, hub_cpu_s: float | None, gen_cpu_s: float, span: float | None = None
) -> dict[str, Any]:
    """The figures of a run; CPU shares over ``span`` seconds (the loaded window as it
    was: its end is late when the load generator is busy), else ``run.seconds``."""
    span = span or run.seconds
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
        "posts_answered_per_s": len(run.post_latencies) / span,
        "posts_offered_per_s": n / run.post_every if run.post_every > 0 else 0.0,
        "requests": run.requests,
        "failed": failed,
        "error_rate": failed / run.requests if run.requests else 0.0,
        "errors": {k: v for k, v in run.errors.items() if v},
        "error_samples": run.error_samples,
        "hub_cpu_pct": None if hub_cpu_s is None else 100 * hub_cpu_s / span,
        "loadgen_cpu_pct": 100 * gen_cpu_s / span,
        "window_s": span,
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
        if f.get("posts_offered_per_s"):
            why.append(
                f"posts answered {f['posts_answered_per_s']:.0f}/s of "
                f"~{f['posts_offered_per_s']:.0f}/s sent"
            )
    if f["failed"]:
        kinds = ", ".join(f"{k} {v}" for k, v in f["errors"].items())
        why.append(f"{100 * f['error_rate']:.1f} % requests failed ({kinds})")
    if not why:
        return "holds"
    return "breaks: " + "; ".join(why + causes(f, hub_threads))


def _pct(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.0f} %"


def causes(f: dict[str, Any], hub_threads: int | None) -> list[str]:
    """What stops it, from the resources measured (% of one core for CPU)."""
    out = []
    cpu, db, gen = f["hub_cpu_pct"], f.get("db_cpu_pct"), f["loadgen_cpu_pct"]
    workers = f.get("workers") or 1
    busiest = f.get("hub_worker_cpu_max_pct", cpu)
    limit, fds = f.get("hub_fd_limit"), f.get("hub_fds_max")
    if limit and fds and fds >= limit - 16:
        out.append(f"a hub process at its open-files limit ({fds:,} of {limit:,})")
    if f["errors"].get("fd_limit"):
        out.append("the load generator out of file descriptors")
    machine, cores = f.get("machine_cpu_pct"), f.get("cpus") or os.cpu_count() or 1
    if machine is not None and machine >= MACHINE_BUSY_PCT * cores:
        parts = [("hub", cpu), ("database", db), ("load generator", gen)]
        parts.append(("kernel irq/softirq (loopback network)", f.get("kernel_irq_cpu_pct")))
        known = sum(v for _, v in parts if v is not None and not math.isnan(v))
        parts.append(("other processes", max(0.0, machine - known)))
        parts = [(k, v) for k, v in parts if v is not None and not math.isnan(v)]
        parts.sort(key=lambda kv: -kv[1])
        shares = ", ".join(f"{k} {v:.0f} %" for k, v in parts)
        out.append(f"the {cores} cores saturated ({machine:.0f} % of {100 * cores} %: {shares})")
    if busiest is not None and not math.isnan(busiest) and busiest >= CPU_BOUND_PCT:
        if workers == 1:
            out.append(f"hub CPU-bound ({cpu:.0f} % of a core)")
        else:
            out.append(
                f"a hub worker CPU-bound ({busiest:.0f} % of a core; {cpu:.0f} % for "
                f"{workers} workers)"
            )
    elif hub_threads and f["stores"] >= hub_threads:  # --hub-threads: a waitress hub
        out.append(f"{f['stores']} long-polls for {hub_threads} threads (CPU {cpu or 0:.0f} %)")
    if db is not None and not math.isnan(db) and db >= CPU_BOUND_PCT:
        out.append(f"database CPU {db:.0f} % of a core")
    activity = f.get("db_activity") or {}
    if activity.get("samples"):
        lock = activity["write_lock"]
        if lock["avg"] >= 1:
            out.append(
                f"requests queue for the hub-wide write lock (pg_advisory_xact_lock: "
                f"{lock['avg']:g} connections waiting on average, {lock['max']} at most; "
                f"{activity['idle_in_tx']['avg']:g} idle in a transaction)"
            )
        other = activity["other_advisory"]["avg"] + activity["other_lock"]["avg"]
        if other >= 1:
            out.append(f"requests wait for other database locks ({other:g} on average)")
        pool, workers_ = f.get("db_pool_total"), f.get("workers") or 1
        # Beside the pools: each worker's feed waiter (LISTEN) and the driver.
        if pool and activity["connections"]["max"] >= pool + workers_ + 1:
            out.append(
                f"every pooled connection in use at times ({workers_} workers x --db-pool: "
                f"{pool}, and {activity['connections']['max']} connections open at most)"
            )
    if f.get("loadgen_cpu_max_pct", gen) >= 90:
        out.append(f"load generator CPU-bound too ({gen:.0f} %)")
    if f["errors"].get("429/503"):
        out.append("the hub shed load (429/503 with Retry-After)")
    if f.get("shard_failures"):
        out += f["shard_failures"]
    if not out:
        out.append(
            f"no resource at its limit (hub {_pct(cpu)}, database {_pct(db)}, "
            f"machine {_pct(machine)} of {100 * cores} %)"
        )
    return out


def fmt_s(v: float | None) -> str:
    if v is None:
        return "-"
    if v == math.inf:
        return "never"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.1f} s"


def _rss(f: dict[str, Any]) -> str:
    if not f.get("hub_rss_peak_mb"):
        return "-"
    text = f"{f['hub_rss_peak_mb']:.0f} MB"
    if (f.get("hub_processes") or 1) > 1 and f.get("hub_pss_peak_mb"):
        text += f" (PSS {f['hub_pss_peak_mb']:.0f} MB, {f['hub_processes']} processes)"
    return text


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| stores | backend | workers | delivery p50 / p95 | never delivered | post p50 / p95 "
        "| failed requests | hub CPU | db CPU | hub RSS peak | loadgen CPU | verdict |"
    )
    out = [head, "|" + "---|" * 12]
    for f in rows:
        where = f"| {f['stores']:,} | {f.get('backend', '-')} | {f.get('workers', '-')} "
        if f.get("skipped"):
            out.append(where + f"| | | | | | | | | {f['verdict']} |")
            continue
        never = f["never_delivered_share"]
        errs = ", ".join(f"{k} {v}" for k, v in f["errors"].items())
        gen = f"{f['loadgen_cpu_pct']:.0f} %"
        if (f.get("loadgen_procs") or 1) > 1:
            gen += f" ({f['loadgen_procs']} processes)"
        out.append(
            where + f"| {fmt_s(f['delivery_p50_s'])} / {fmt_s(f['delivery_p95_s'])} "
            f"| {'-' if never is None else f'{100 * never:.1f} %'} "
            f"| {fmt_s(f['post_p50_s'])} / {fmt_s(f['post_p95_s'])} "
            f"| {100 * f['error_rate']:.1f} % of {f['requests']:,}"
            + (f" ({errs})" if errs else "")
            + f" | {_pct(f['hub_cpu_pct'])} | {_pct(f.get('db_cpu_pct'))} | {_rss(f)} "
            f"| {gen} | {f['verdict']} |"
        )
    return "\n".join(out)


# --- Main -------------------------------------------------------------------------------


def measure(n: int, args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One count, under a hard deadline (see :class:`Watchdog`)."""
    budget = args.start_allowance + args.seconds + args.drain + CANCEL_GRACE_S
    partial: dict[str, Any] = {"stores": n}
    where = {"backend": args.backend, "workers": args.workers}

    def give_up(phase: str) -> None:  # the watchdog's last word: print what there is
        run = partial.get("run")
        f: dict[str, Any] = {"stores": n, "skipped": "no figures", **where}
        if run is not None:
            f = {**figures(run, n, None, 0.0), **where}  # what the stores saw until now
            f["loadgen_cpu_pct"] = 100 * _self_cpu() / max(run.seconds, 1e-9)
        f["verdict"] = (
            f"{DID_NOT_FINISH}: stuck while {phase}; the harness did not come back (exit 3)"
        )
        print(f"[{n} stores] {f['verdict']}", file=sys.stderr)
        print(table([*rows, f]))

    dog = Watchdog(time.monotonic() + budget, WATCHDOG_GRACE_S, give_up)
    dog.cluster = args.cluster
    try:
        f = _measure(n, args, dog, partial)
    finally:
        dog.disarm()
    f = {**where, **f}
    if dog.expired_in is not None and not f["verdict"].startswith(DID_NOT_FINISH):
        f["verdict"] = f"{DID_NOT_FINISH}: stuck while {dog.expired_in}; " + f["verdict"]
    return f


def _measure(
    n: int, args: argparse.Namespace, dog: Watchdog, partial: dict[str, Any]
) -> dict[str, Any]:
    procs, cannot = plan_load(n, args.loadgen_procs)
    if cannot:
        f: dict[str, Any] = {"stores": n, "skipped": cannot}
        f["verdict"] = verdict(f, args.hub_threads)
        return f
    share = math.ceil(n / procs)
    raise_fd_limit(FDS_PER_STORE * share + FDS_SPARE)
    tmp = Path(tempfile.mkdtemp(prefix="hub-scale-"))
    dog.folder = None if args.keep else tmp
    proc = None
    database = None  # the PostgreSQL database of this count
    dropped = None  # the database made for this count (dropped after it)
    shards: list[Any] = []
    try:
        t = time.monotonic()
        if args.hub_url:
            data = args.hub_data
            parts = urlsplit(args.hub_url)
            host, port, pid = parts.hostname or "127.0.0.1", parts.port or 80, args.hub_pid
            database = args.database
        else:
            data, host, port = tmp / "hub", "127.0.0.1", free_port()
        if args.backend == "postgresql" and database is None:
            if args.database:
                database = args.database
            else:
                if args.cluster is None:
                    dog.enter("starting PostgreSQL")
                    try:
                        args.cluster = start_pg(args, dog)
                    except Exception as exc:  # noqa: BLE001 - said in the verdict
                        f = {"stores": n, "skipped": f"PostgreSQL did not start: {exc}"}
                        f["verdict"] = f"{DID_NOT_FINISH}: start-up: {f['skipped']}"
                        return f
                dropped = f"hub_scale_{n}_{os.getpid()}_{len(args.databases)}"
                args.databases.append(dropped)
                database = args.cluster.create_database(dropped)
        target: str | Path = database or db_path(data)  # not KIOSK_HUB_DATABASE: explicit
        dog.enter("seeding")
        stores, skus, driver_store = seed(target, n, args.products)
        print(f"[{n} stores] seeded in {time.monotonic() - t:.1f} s", file=sys.stderr)
        if not args.hub_url:
            dog.enter("starting the hub")
            proc = dog.hub = start_hub(
                data,
                port,
                args.hub_threads,
                tmp / "hub.log",
                database=database,
                workers=args.workers,
                db_pool=args.db_pool,
                hub_env=args.hub_env,
            )
            pid = proc.pid
            print(f"[{n} stores] hub pid {pid}", file=sys.stderr, flush=True)
        dog.enter(f"waiting for the hub's status page on {host}:{port}")
        allowance = max(0.0, args.start_allowance - (time.monotonic() - t))
        try:
            wait_ready(host, port, allowance, proc)
            if args.workers > 1 and proc is not None:  # every worker forked and serving
                left = max(0.0, t + args.start_allowance - time.monotonic())
                wait_workers(pid, args.workers, left)
        except NotReady as exc:
            f = {"stores": n, "skipped": str(exc)}
            f["verdict"] = f"{DID_NOT_FINISH}: start-up: {exc}"
            if proc is not None:
                f["hub_log_tail"] = (tmp / "hub.log").read_text(errors="replace")[-1000:]
            return f
        print(f"[{n} stores] hub ready in {time.monotonic() - t:.1f} s", file=sys.stderr)
        db = hdb.connect(target)
        try:
            start_cursor = str(changes.last_seq(db))
        finally:
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
            driver_store=driver_store,
        )
        groups = [stores[i::procs] for i in range(procs)]
        run.stores = groups[0]  # this process's share; the others in their own processes
        if procs > 1:
            dog.enter(f"starting {procs - 1} more load generator processes")
            shards = start_shards(run, groups[1:], args.seed, tmp)
            dog.shards = [p for p, _, _ in shards]
            try:
                run.t_start = go_shards(shards, min(SHARD_READY_S, dog.remaining()))
            except NotReady as exc:
                f = {"stores": n, "skipped": str(exc)}
                f["verdict"] = f"{DID_NOT_FINISH}: start-up: {exc}"
                return f
        db_pid = args.cluster.process.pid if args.cluster and not args.database else None
        marks: dict[str, Any] = {}
        peaks = {"VmRSS": 0, "Pss": 0, "fds": 0, "processes": 0}
        sampling = threading.Event()

        def sample() -> None:  # the hub tree's memory and open files every 0.5 s
            while not sampling.wait(0.5):
                mem = tree_memory(pid)
                for key in ("VmRSS", "Pss", "processes"):
                    peaks[key] = max(peaks[key], mem[key])
                for hub_pid in tree_pids(pid, proc_table()):
                    peaks["fds"] = max(peaks["fds"], fd_count(hub_pid))

        sampler = threading.Thread(target=sample, daemon=True)
        if pid:
            sampler.start()

        def mark(name: str) -> Any:
            def at() -> None:  # CPU readings as the loaded window starts and ends
                table_ = proc_table()
                marks[name] = (tree_cpu(pid, table_), tree_cpu(db_pid, table_), machine_cpu_s())

            return at

        partial["run"] = run
        db_sampler = DbSampler(database, run) if database else None
        dog.enter(f"loading ({n} stores, {args.seconds:g} s)")
        # Not asyncio.run: its clean-up waits, without a bound, for tasks that have not
        # ended; load() bounds its own wait and a loop closed with a task still pending
        # only warns.
        loop = asyncio.new_event_loop()
        try:
            gen_cpu = run_in_loop(
                loop,
                load(
                    run,
                    target,
                    data,
                    args.changes_per_s,
                    args.seed,
                    mark("start"),
                    mark("end"),
                    dog,
                ),
            )
        finally:
            loop.close()
        span = run.window_s or run.seconds
        gen_cpus = [gen_cpu / span]  # each process's share of one core
        if shards:
            dog.enter(f"collecting {len(shards)} load generator processes")
            run.stores = stores
            gen_cpus += collect_shards(run, shards, run.t_end + run.drain + CANCEL_GRACE_S)
        dog.enter("collecting the figures")
        db_activity = db_sampler.stop() if db_sampler else None
        mem = tree_memory(pid) if pid else {}
        sampling.set()
        (hub0, db0, m0), (hub1, db1, m1) = (
            marks.get("start", (None,) * 3),
            marks.get("end", (None,) * 3),
        )
        hub_cpu, hub_max = cpu_delta(hub0, hub1)
        f = figures(run, n, None if math.isnan(hub_cpu) else hub_cpu, sum(gen_cpus) * span, span)
        f["backend"], f["workers"] = args.backend, args.workers
        per_s = 100 / span
        f["hub_worker_cpu_max_pct"] = None if math.isnan(hub_max) else hub_max * per_s
        if db_pid:
            db_cpu, _ = cpu_delta(db0, db1)
            f["db_cpu_pct"] = None if math.isnan(db_cpu) else db_cpu * per_s
        else:
            f["db_cpu_pct"] = None  # SQLite runs inside the hub (or a database not ours)
        if m0 is None or m1 is None:
            f["machine_cpu_pct"] = f["kernel_irq_cpu_pct"] = None
        else:
            f["machine_cpu_pct"] = (m1[0] - m0[0]) * per_s
            f["kernel_irq_cpu_pct"] = (m1[1] - m0[1]) * per_s
        f["cpus"] = os.cpu_count()
        f["loadgen_procs"] = procs
        f["loadgen_cpu_max_pct"] = 100 * max(gen_cpus)
        single = peaks["processes"] <= 1 and mem.get("processes", 1) <= 1
        rss = max(peaks["VmRSS"], mem.get("VmRSS", 0), mem.get("VmHWM", 0) if single else 0)
        f["hub_rss_peak_mb"] = rss / 1024 or None
        f["hub_pss_peak_mb"] = max(peaks["Pss"], mem.get("Pss", 0)) / 1024 or None
        f["hub_processes"] = max(peaks["processes"], mem.get("processes", 0)) or None
        f["hub_threads"] = mem.get("Threads")
        f["hub_fds_max"] = peaks["fds"] or None
        f["hub_fd_limit"] = proc_fd_limit(pid) if pid else None
        f["shard_failures"] = run.shard_failures
        f["db_activity"] = db_activity
        f["db_pool_total"] = (
            args.workers * (args.db_pool or DEFAULT_DB_POOL) if database and proc else None
        )
        if database:
            f["database"] = describe(database)
        f["verdict"] = verdict(f, args.hub_threads)
        stuck = []
        if run.stuck_tasks:
            stuck.append(f"{run.stuck_tasks} tasks did not end when cancelled")
        if run.driver_stuck:
            stuck.append("the driver thread was still in apply_batch")
        if run.shard_failures:
            stuck += run.shard_failures
        if stuck:
            f["verdict"] = f"{DID_NOT_FINISH}: " + "; ".join(stuck) + "; " + f["verdict"]
        if proc is not None and proc.poll() is not None:
            f["verdict"] += f" (the hub exited: {proc.returncode})"
        print(
            f"[{n} stores] CPU over the window, % of one core: hub {_pct(f['hub_cpu_pct'])} "
            f"(busiest process {_pct(f['hub_worker_cpu_max_pct'])}), database "
            f"{_pct(f['db_cpu_pct'])}, load generator {_pct(f['loadgen_cpu_pct'])}, "
            f"kernel irq/softirq {_pct(f['kernel_irq_cpu_pct'])}, whole machine "
            f"{_pct(f['machine_cpu_pct'])} of {100 * (os.cpu_count() or 1)} %",
            file=sys.stderr,
        )
        return f
    finally:
        for shard, _, _ in shards:
            if shard.poll() is None:
                kill_hub(shard)
        if proc is not None:
            dog.enter("stopping the hub")
            stop_hub(proc)
        if dropped and args.cluster is not None:
            dog.enter("dropping the count's database")
            try:
                args.cluster.drop_database(dropped)
            except Exception as exc:  # noqa: BLE001 - the cluster goes at the end anyway
                print(f"dropping {dropped}: {exc}", file=sys.stderr)
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
    p.add_argument(
        "--backend",
        default="sqlite",
        choices=("sqlite", "postgresql"),
        help="the hub's database: sqlite (DATA/hub.db) or postgresql (a throwaway cluster, "
        "or --database)",
    )
    p.add_argument(
        "--database",
        help="a postgresql:// URL to use instead of a throwaway cluster (stores are added "
        "to it; implies --backend postgresql)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="hub processes (kiosk hub serve --workers)"
    )
    p.add_argument(
        "--db-pool",
        type=int,
        default=None,
        help=f"PostgreSQL connections per worker (kiosk hub serve --db-pool; "
        f"default {DEFAULT_DB_POOL})",
    )
    p.add_argument(
        "--loadgen-procs",
        type=int,
        default=0,
        help="load generator processes (0: as few as the open-files limit allows)",
    )
    p.add_argument("--hub-threads", type=int, default=None, help="kiosk hub serve --threads")
    p.add_argument(
        "--hub-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the hub started (repeatable; said in the output)",
    )
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
    if args.database:
        if not hdb.is_url(args.database):
            p.error("--database must be a postgresql:// URL")
        args.backend = "postgresql"
    if args.workers < 1 or args.loadgen_procs < 0 or (args.db_pool or 1) < 1:
        p.error("--workers and --db-pool must be positive, --loadgen-procs 0 or more")
    if args.hub_url and args.backend == "postgresql" and not args.database:
        p.error("--hub-url on PostgreSQL needs --database (the hub's database URL)")
    if any("=" not in item for item in args.hub_env):
        p.error("--hub-env: KEY=VALUE")
    args.hub_env = dict(item.split("=", 1) for item in args.hub_env)
    args.cluster = None  # the throwaway PostgreSQL cluster, started at the first count
    args.databases = []  # the databases made in it, one per count
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


def commit() -> str:
    """The commit measured (``git log --oneline -1``), and whether the tree differs."""
    try:
        head = subprocess.run(
            ["git", "log", "--oneline", "-1", "--no-decorate"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "app"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    head = head[:72] + ("..." if len(head) > 72 else "")
    return head + (f" (+ {len(dirty)} files changed under app/)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the harness as Ctrl-C does: through the finally clauses (the hub and
    # the PostgreSQL cluster stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: list[dict[str, Any]] = []
    measured = commit()
    try:
        for n in args.counts:
            f = measure(n, args, rows)
            rows.append(f)
            print(f"[{n} stores] {f['verdict']}", file=sys.stderr, flush=True)
    finally:
        if args.cluster is not None:
            print("stopping the PostgreSQL cluster", file=sys.stderr, flush=True)
            stop_cluster(args.cluster)
    threads = args.hub_threads or HUB_DEFAULT_THREADS
    server = f"--threads {args.hub_threads}" if args.hub_threads else "gevent (the default)"
    if args.backend == "sqlite":
        database = "sqlite (DATA/hub.db)"
    elif args.database:
        database = f"postgresql ({describe(args.database)})"
    else:
        settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **pg_settings(args),
        }
        database = (
            "postgresql (a throwaway local cluster: "
            + ", ".join(f"{k}={v}" for k, v in settings.items())
            + "; durability traded for speed, a real deployment keeps fsync on)"
        )
    pool = f", --db-pool {args.db_pool or DEFAULT_DB_POOL}" if args.backend == "postgresql" else ""
    print(
        f"\nhub: {database}, {args.workers} worker{'s' if args.workers > 1 else ''}{pool}, "
        f"{server}; {args.seconds:g} s per count + {args.drain:g} s drain; a post every "
        f"~{args.post_every:g} s per store, {args.changes_per_s:g} change/s to every store; "
        f"{os.cpu_count()} cores shared by the hub, the database and the load generator; "
        f"commit {measured}"
        + "".join(f"; hub environment {k}={v}" for k, v in args.hub_env.items())
    )
    print(table(rows))
    if args.json:
        doc = {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            "commit": measured,
            "backend": args.backend,
            "database": database,
            "workers": args.workers,
            "hub_env": args.hub_env,
            "db_pool": args.db_pool or DEFAULT_DB_POOL,
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
    if sys.argv[1:2] == [SHARD_FLAG]:
        sys.exit(shard_main(*sys.argv[2:4]))
    sys.exit(main())
