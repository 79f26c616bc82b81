"""``kiosk serve`` on both cores (issue 15): gunicorn web workers and exactly one
``kiosk worker`` (sync, health report, timers), real processes throughout."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import threading
import time
from pathlib import Path

import requests

from app.core import db as dbmod
from app.store.cli_worker import LOCK_NAME
from app.store.domain import staff as staffmod

from .conftest import run_kiosk
from .sync_fixtures import *  # noqa: F403
from .sync_fixtures import LYON, adjust_cli, hub_transactions, store_env

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CLOSE = {"Connection": "close"}  # each request on a new connection: any worker may take it


def _children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid``: their pid and command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            state = stat.rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def _split(pid: int) -> tuple[list[int], list[int]]:
    """(web workers, kiosk workers) among the children of the arbiter ``pid``."""
    web, side = [], []
    for child, cmdline in _children(pid).items():
        (side if "app.store.cli_worker" in cmdline else web).append(child)
    return sorted(web), sorted(side)


def _wait_for(what, condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _lock_pid(data: Path) -> int:
    try:
        text = (data / LOCK_NAME).read_text().strip()
    except FileNotFoundError:  # the kiosk worker is starting
        return 0
    return int(text) if text.isdigit() else 0


def test_serve_runs_n_web_workers_and_exactly_one_kiosk_worker(server_factory, store_data):
    server = server_factory(store_data, env={"KIOSK_WORKERS": "3"})
    pid = server.proc.pid
    web, side = _wait_for("3 web workers and 1 kiosk worker", lambda: _ready(pid, 3))
    assert len(web) == 3 and len(side) == 1
    # The kiosk worker holds the data directory's lock: a second one refuses to run.
    _wait_for("the worker's lock", lambda: _lock_pid(store_data) == side[0])
    second = run_kiosk("worker", "--data", str(store_data))
    assert second.returncode == 3, second.stderr
    assert f"pid {side[0]}" in second.stderr and "already runs" in second.stderr
    assert _split(pid) == (web, side)  # and the first one is untouched
    assert requests.get(server.url + "/healthz", timeout=5).json()["ok"] is True


def test_a_killed_web_worker_or_kiosk_worker_is_started_again(server_factory, store_data):
    server = server_factory(store_data, env={"KIOSK_WORKERS": "2"})
    pid = server.proc.pid
    web, side = _wait_for("2 + 1 children", lambda: _ready(pid, 2))
    os.kill(web[0], signal.SIGKILL)
    new_web, _ = _wait_for("a new web worker", lambda: _replaced(pid, 2, web, side, "web"))
    assert web[0] not in new_web and web[1] in new_web
    os.kill(side[0], signal.SIGKILL)
    _, new_side = _wait_for("a new kiosk worker", lambda: _replaced(pid, 2, web, side, "side"))
    assert new_side != side
    _wait_for("the new worker's lock", lambda: _lock_pid(store_data) == new_side[0])
    for _ in range(6):  # whichever worker answers
        assert requests.get(server.url + "/healthz", headers=CLOSE, timeout=5).ok


def _ready(pid: int, n: int):
    web, side = _split(pid)
    return (web, side) if len(web) == n and len(side) == 1 else None


def _replaced(pid: int, n: int, web: list[int], side: list[int], which: str):
    now = _ready(pid, n)
    if now is None:
        return None
    changed = now[0] != web if which == "web" else now[1] != side
    return now if changed else None


def test_sigterm_stops_every_process(server_factory, store_data):
    server = server_factory(store_data, env={"KIOSK_WORKERS": "2"})
    web, side = _wait_for("2 + 1 children", lambda: _ready(server.proc.pid, 2))
    server.proc.terminate()
    assert server.proc.wait(timeout=20) == 0
    for child in (*web, *side):
        _wait_for(f"process {child} gone", lambda c=child: not _alive(c))


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except (OSError, IndexError):
        return False


def _timed_pages(url: str, n: int) -> float:
    """Seconds for ``n`` full search pages (not htmx fragments: no cache helps) whose
    last word is one letter: each matches many names, ~8 ms of the server's work."""
    started = time.perf_counter()
    with requests.Session() as s:
        for i in range(n):
            r = s.get(url + "/search", params={"q": f"chaussure {'abcdefghijklmnopr'[i % 17]}"})
            assert r.status_code == 200
    return time.perf_counter() - started


def _two_at_once(url: str, n: int) -> float:
    times: list[float] = []
    threads = [threading.Thread(target=lambda: times.append(_timed_pages(url, n))) for _ in "ab"]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_two_clients_keep_both_web_workers_busy(server_factory, store_data):
    """Two clients at once (a new connection per request: no keep-alive ties a client
    to one worker) are served by both web workers, each doing a fair share of the work
    (CPU time read from /proc), so both cores can serve. How much sooner they finish
    is a timing on a shared box: benchmarks/store_processes.py measures it against the
    floor of one web worker in the same run; here it is printed only."""
    two = server_factory(store_data, env={"KIOSK_WORKERS": "2"})
    web, _ = _wait_for("2 web workers", lambda: _ready(two.proc.pid, 2))
    _two_at_once(two.url, 5)
    before = {w: _cpu_ticks(w) for w in web}
    took = statistics.median(_two_at_once(two.url, 60) for _ in range(3))
    used = {w: _cpu_ticks(w) - before[w] for w in web}
    print(f"two clients, 2 x 3 x 60 search pages: {took:.3f}s; CPU ticks per worker {used}")
    total = sum(used.values())
    assert total > 0
    assert all(ticks >= total / 4 for ticks in used.values()), used  # neither idles


def _login(url: str, member: dict, pin: str) -> requests.Response:
    with requests.Session() as s:
        page = s.get(url + "/staff/login", headers=CLOSE, timeout=10)
        form = {"staff_id": member["id"], "pin": pin, "csrf_token": _CSRF.search(page.text)[1]}
        return s.post(
            url + "/staff/login", data=form, headers=CLOSE, allow_redirects=False, timeout=10
        )


def test_a_lockout_made_in_one_web_worker_holds_in_the_other(server_factory, store_data):
    db = dbmod.connect(dbmod.db_path(store_data))
    member = staffmod.add_staff(db, "Léa Petit", "staff", "482913")
    db.close()
    server = server_factory(store_data, env={"KIOSK_WORKERS": "2"})
    (a, b), _ = _wait_for("2 web workers", lambda: _ready(server.proc.pid, 2))
    os.kill(b, signal.SIGSTOP)  # every request now reaches worker a
    try:
        for _ in range(staffmod.MAX_ATTEMPTS):
            assert _login(server.url, member, "000000").status_code in (400, 429)
    finally:
        os.kill(b, signal.SIGCONT)
    os.kill(a, signal.SIGSTOP)  # ... and now worker b, which saw none of them
    try:
        refused = _login(server.url, member, "482913")
    finally:
        os.kill(a, signal.SIGCONT)
    assert refused.status_code == 429, refused.text[:300]


def test_the_look_up_memory_is_one_for_every_process(tmp_path):
    """What one web worker remembers (a cart looked up at the hub, a card it does not
    know) another process reads back: memo.db, not a dict per process."""
    import subprocess
    import sys

    from app.store.sync import memo

    path = tmp_path / memo.MEMO_NAME
    code = (
        "from app.store.sync import memo; "
        f"memo.Memo({str(path)!r}, 'cart', 60).put('c-ABC', {{'lines': [['sku-1', 2]]}})"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    assert memo.Memo(path, "cart", 60).get("c-ABC") == {"lines": [["sku-1", 2]]}
    assert memo.Memo(path, "card_miss", 60).get("c-ABC") is None  # each kind apart
    memo.Memo(path, "cart", -1).put("c-OLD", {"lines": []})  # already expired
    assert memo.Memo(path, "cart", 60).get("c-OLD") is None


def test_the_look_up_memory_keeps_no_id_on_disk_nor_what_expired(tmp_path):
    """A card the hub does not know (perhaps an erased customer's) and a cart id (a
    bearer code) are never written to memo.db as they are, and an expired entry of any
    kind is gone, overwritten, after the next write."""
    import sqlite3

    from app.store.sync import memo

    path = tmp_path / memo.MEMO_NAME
    card, cart = "card-7Q4ZKX2M9P", "c-5TRW8LHN3B"
    memo.Memo(path, "card_miss", -1).put(card, True)  # already expired
    memo.Memo(path, "cart", 60).put(cart, {"lines": [["sku-1", 2]]})
    assert memo.Memo(path, "cart", 60).get(cart) == {"lines": [["sku-1", 2]]}
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert conn.execute("SELECT count(*) FROM memo WHERE kind = 'card_miss'").fetchone() == (0,)
    conn.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("memo"))
    assert card.encode() not in raw and cart.encode() not in raw


def _hub_peers(pids: list[int], port: int) -> set[int]:
    """Which of ``pids`` hold a TCP connection to 127.0.0.1:``port``."""
    inodes: dict[str, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes[link[8:-1]] = pid
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01" and fields[9] in inodes:  # ESTABLISHED
            peers.add(inodes[fields[9]])
    return peers


def test_only_the_kiosk_worker_syncs_however_many_web_workers(
    server_factory, hub_server, synced_store
):
    """Three web workers, one kiosk worker: only the kiosk worker talks to the hub (its
    long-poll is held open), and a stock change made while the server runs reaches the
    hub exactly once."""
    env = {**store_env(hub_server.url, hub_server.data), "KIOSK_WORKERS": "3"}
    server = server_factory(synced_store, env=env)
    web, side = _wait_for("3 + 1 children", lambda: _ready(server.proc.pid, 3))
    tree = [server.proc.pid, *web, *side]
    _wait_for("the kiosk worker's long-poll", lambda: _hub_peers(tree, hub_server.port))
    db = dbmod.connect(dbmod.db_path(synced_store))
    sku = db.execute("SELECT sku FROM stock_levels WHERE store_id = ? LIMIT 1", [LYON]).fetchone()
    db.close()
    moved = adjust_cli(synced_store, sku[0], -1)
    assert moved is not None
    _wait_for("the movement at the hub", lambda: hub_transactions(hub_server.data, [moved])[moved])
    for _ in range(10):  # pages in every worker meanwhile
        assert requests.get(server.url + "/", headers=CLOSE, timeout=10).ok
    assert _hub_peers(tree, hub_server.port) == set(side)
    assert hub_transactions(hub_server.data, [moved]) == {moved: 1}


def test_a_screen_beat_taken_by_one_web_worker_is_seen_by_the_other(server_factory, store_data):
    """The screen's watchdog asks any worker how old the kiosk page's last beat is: a
    beat one worker took counts in the other, and both name the same boot."""
    server = server_factory(store_data, env={"KIOSK_WORKERS": "2"})
    (a, b), _ = _wait_for("2 web workers", lambda: _ready(server.proc.pid, 2))
    os.kill(b, signal.SIGSTOP)  # the beat reaches worker a
    try:
        beat = requests.post(server.url + "/kiosk/heartbeat", headers=CLOSE, timeout=10)
    finally:
        os.kill(b, signal.SIGCONT)
    assert beat.ok
    os.kill(a, signal.SIGSTOP)  # the question reaches worker b
    try:
        age = requests.get(server.url + "/kiosk/heartbeat?max_age=30", headers=CLOSE, timeout=10)
    finally:
        os.kill(a, signal.SIGCONT)
    assert age.status_code == 200, age.text
    assert age.json()["age"] is not None and age.json()["age"] < 30
    assert age.json()["boot"] == beat.json()["boot"]


def test_a_beat_left_by_an_earlier_boot_of_the_box_does_not_count(app, client):
    """Beats are times of the system's monotonic clock: a beat file left from before
    the box restarted (a time ahead of this boot's clock, or a wall-clock time) is not
    this screen beating now; a beat taken now is, whatever the wall clock says."""
    beat = Path(app.config["DATA_DIR"]) / "screens" / "local"
    beat.parent.mkdir(exist_ok=True)
    beat.touch()
    for left_behind in (time.monotonic() + 3600, time.time()):
        os.utime(beat, (left_behind, left_behind))
        answer = client.get("/kiosk/heartbeat?max_age=45")
        assert answer.status_code == 503 and answer.get_json()["age"] is None, left_behind
    assert client.post("/kiosk/heartbeat").status_code == 200
    answer = client.get("/kiosk/heartbeat?max_age=45")
    assert answer.status_code == 200 and answer.get_json()["age"] < 5
