"""Memory of every store process (issue 15): ``kiosk serve`` with gunicorn's web workers
and its one ``kiosk worker``, on the 100,000-product bench store (.bench/, seeded by
benchmarks/run.py), after a busy spell (searches, cold searches, product pages from 8
clients), against ``--server waitress`` (one process) in the same run.

Budget: all store processes together <= 250 MB RSS. RSS counts the pages the workers
share with the arbiter (loaded once, ``preload_app``) in each of them, so the sum of
RSS overstates what the box gives; PSS (each shared page divided among its sharers,
/proc/PID/smaps_rollup) is printed beside it, and each process's RSS split into the pages
it shares (with the arbiter: ``preload_app`` and ``gc.freeze``) and its own.

    .venv/bin/python benchmarks/store_processes.py [--workers 2] [--requests 100]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
BUDGET_MB = 250


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        todo += kids
    return found


def memory_kb(pid: int) -> tuple[dict[str, int], str]:
    """``pid``'s memory in kB (VmRSS, VmHWM; Pss, Shared, Private from
    /proc/PID/smaps_rollup, as smem reads them) and its command line."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    mem = {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}
    mem["Pss"], mem["Shared"], mem["Private"] = mem["VmRSS"], 0, mem["VmRSS"]
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
        kb = {line.split()[0].rstrip(":"): int(line.split()[1]) for line in rollup}
        mem["Pss"] = kb["Pss"]
        mem["Shared"] = kb["Shared_Clean"] + kb["Shared_Dirty"]
        mem["Private"] = kb["Private_Clean"] + kb["Private_Dirty"]
    except (OSError, KeyError, IndexError, ValueError):
        pass
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return mem, cmd.strip()


def start(data: Path, port: int, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--data", str(data), "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit("server exited")
        time.sleep(0.05)
    raise SystemExit("server not ready in 60 s")


def drive(port: int, paths: list[str], clients: int) -> None:
    def client(mine: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for path in mine:
            # A new connection now and then: gunicorn's workers all take some.
            conn.request("GET", path, headers={"HX-Request": "true"})
            resp = conn.getresponse()
            resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    threads = [threading.Thread(target=client, args=(paths[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure(data: Path, extra: list[str], paths: list[str], clients: int) -> list[tuple]:
    port = free_port()
    proc = start(data, port, extra)
    try:
        drive(port, paths, clients)
        time.sleep(0.5)  # let the kiosk worker settle (nothing waits on it here)
        return [(pid, *memory_kb(pid)) for pid in tree(proc.pid) if Path(f"/proc/{pid}").exists()]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=None, help="in all (kiosk serve --threads)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=100, help="per client")
    parser.add_argument("--data", type=Path, default=None, help="default .bench/store-N")
    args = parser.parse_args()
    data = args.data or ROOT / ".bench" / f"store-{args.products}"
    if not (data / "kiosk.db").exists():
        raise SystemExit(f"{data} is not seeded: run benchmarks/run.py once")
    db = sqlite3.connect(data / "kiosk.db")
    refs = [r[0] for r in db.execute("SELECT ref FROM products ORDER BY random() LIMIT 500")]
    names = [r[0] for r in db.execute("SELECT name_fr FROM products ORDER BY random() LIMIT 500")]
    db.close()
    rng = random.Random(7)
    paths = []
    for _ in range(args.clients * args.requests):
        kind = rng.randrange(3)
        if kind == 0:
            paths.append(f"/product/{rng.choice(refs)}")
        else:
            word = max(rng.choice(names).split(), key=len)
            paths.append(f"/search?q={quote(word[: rng.randint(min(2, len(word)), len(word))])}")
    runs = {
        f"gunicorn, {args.workers} web workers + kiosk worker": ["--workers", str(args.workers)]
        + (["--threads", str(args.threads)] if args.threads else []),
        "waitress, one process": ["--server", "waitress"],
    }
    for title, extra in runs.items():
        rows = measure(data, extra, paths, args.clients)
        print(f"\n{title} ({len(paths)} requests, {args.clients} clients):")
        for pid, mem, cmd in rows:
            mb = {name: kb / 1024 for name, kb in mem.items()}
            print(
                f"  {pid:>7} RSS {mb['VmRSS']:5.1f} (peak {mb['VmHWM']:5.1f}) = shared "
                f"{mb['Shared']:5.1f} + private {mb['Private']:5.1f}, PSS {mb['Pss']:5.1f} MB"
                f"  {cmd[-45:]}"
            )
        rss_total = sum(r[1]["VmRSS"] for r in rows) / 1024
        pss_total = sum(r[1]["Pss"] for r in rows) / 1024
        verdict = "within" if rss_total <= BUDGET_MB else "OVER"
        print(
            f"  all store processes: RSS {rss_total:.0f} MB, PSS {pss_total:.0f} MB "
            f"({verdict} the {BUDGET_MB} MB RSS budget)"
        )


if __name__ == "__main__":
    main()
