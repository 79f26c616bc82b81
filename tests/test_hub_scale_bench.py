"""benchmarks/hub_scale.py keeps working: a few simulated stores against a real hub."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import ROOT

BENCH = ROOT / "benchmarks" / "hub_scale.py"


def run_bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def test_three_stores_receive_every_change_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = run_bench(
        "--stores",
        "3",
        "--seconds",
        "3",
        "--drain",
        "2",
        "--post-every",
        "1",
        "--changes-per-s",
        "2",
        "--loadgen-procs",
        "2",  # the stores split over this process and one more, as 10,000 stores need
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert run["stores"] == 3
    assert run["loadgen_procs"] == 2
    assert run["changes"] >= 2
    assert run["deliveries_expected"] == 3 * run["changes"]
    assert run["never_delivered_share"] == 0
    assert run["delivery_p95_s"] < 2
    assert run["posts"] >= 3 and run["posts_unanswered"] == 0
    assert run["failed"] == 0, run["errors"]
    assert run["hub_cpu_pct"] is not None and run["hub_rss_peak_mb"] > 0
    assert run["verdict"] == "holds"
    assert "| 3 |" in done.stdout  # the table


def test_postgresql_with_two_workers_delivers_every_change_without_errors(
    tmp_path: Path,
) -> None:
    out = tmp_path / "figures.json"
    done = run_bench(
        "--stores", "3", "--seconds", "3", "--drain", "2", "--post-every", "1",
        "--changes-per-s", "2", "--backend", "postgresql", "--workers", "2",
        "--json", str(out),
        timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["backend"] == "postgresql" and doc["workers"] == 2
    assert "fsync=off" in doc["database"]  # the throwaway cluster says how it was set
    (run,) = doc["runs"]
    assert run["backend"] == "postgresql" and run["workers"] == 2
    assert run["changes"] >= 2
    assert run["deliveries_expected"] == 3 * run["changes"]
    assert run["never_delivered_share"] == 0
    assert run["delivery_p95_s"] < 2
    assert run["posts"] >= 3 and run["posts_unanswered"] == 0
    assert run["failed"] == 0, run["errors"]
    assert run["hub_processes"] == 3  # the supervisor and its two workers, summed
    assert run["hub_cpu_pct"] is not None and run["hub_rss_peak_mb"] > 0
    assert run["db_cpu_pct"] is not None  # the postgres server's own, apart
    assert run["verdict"] == "holds", run["verdict"]
    assert "| 3 | postgresql | 2 |" in done.stdout  # the table, with its new columns
    assert "stopping the PostgreSQL cluster" in done.stderr
    folder = next(x for x in done.stderr.splitlines() if x.startswith("PostgreSQL cluster on"))
    pid = int(folder.split("(pid ")[1].split(";")[0])
    assert not _alive(pid), "the harness left its PostgreSQL cluster running"


def test_an_unknown_backend_is_refused() -> None:
    done = run_bench("--stores", "3", "--seconds", "3", "--backend", "mysql")
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


def test_the_verdict_names_what_stops_it() -> None:
    sys.path.insert(0, str(BENCH.parent))
    import hub_scale

    base = {
        "stores": 1000, "workers": 2, "cpus": 2, "delivery_p95_s": 5.0, "post_p95_s": 0.1,
        "never_delivered_share": 0.0, "failed": 10, "requests": 1000, "error_rate": 0.01,
        "errors": {"429/503": 10}, "hub_cpu_pct": 150.0, "hub_worker_cpu_max_pct": 95.0,
        "db_cpu_pct": 30.0, "loadgen_cpu_pct": 15.0, "loadgen_cpu_max_pct": 15.0,
        "machine_cpu_pct": 196.0,
    }  # fmt: skip
    said = hub_scale.verdict(base, None)
    assert said.startswith("breaks: delivery p95 5.0 s > 2 s")
    assert "the 2 cores saturated (196 % of 200 %: hub 150 %, database 30 %" in said
    assert "a hub worker CPU-bound (95 % of a core; 150 % for 2 workers)" in said
    assert "the hub shed load (429/503 with Retry-After)" in said
    said = hub_scale.verdict({**base, "hub_fds_max": 19990, "hub_fd_limit": 20000}, None)
    assert "a hub process at its open-files limit (19,990 of 20,000)" in said
    quiet = {**base, "hub_cpu_pct": 20.0, "hub_worker_cpu_max_pct": 12.0, "errors": {}}
    quiet |= {"failed": 0, "error_rate": 0.0, "machine_cpu_pct": 60.0, "db_cpu_pct": 90.0}
    said = hub_scale.verdict(quiet, None)
    assert "database CPU 90 % of a core" in said and "saturated" not in said
    assert hub_scale.verdict({**quiet, "delivery_p95_s": 0.5}, None) == "holds"


def _stock(seq: int, store: str, tx: str, order: tuple[str, ...] = ()) -> str:
    """A stock change as the hub's feed writes it (app/hub/recent_changes.item_json)."""
    data = {"store_id": store, "sku": "SKU-1", "qty": 3, "as_of": "2026-01-01T00:00:00Z"}
    data["tx"] = tx
    text = json.dumps({k: data[k] for k in order or data}, separators=(",", ":"))
    return f'{{"data":{text},"key":"{store}/SKU-1","kind":"stock","seq":{seq}}}'


def test_feed_pages_read_without_decoding_every_change_read_the_same(monkeypatch) -> None:
    sys.path.insert(0, str(BENCH.parent))
    import hub_scale

    driver = "st-driver"
    tricky = (
        '{"data":{"id":"st-x","name":"A \\"],\\"cursor\\":"},"key":"st-x","kind":"store","seq":4}'
    )
    items = [_stock(1, "st-other", "t-1"), _stock(2, driver, "t-2"), _stock(3, driver, "t-3")]
    tail = '"cursor":"4","more":true,"remaining":7,"server_time":"2026-01-01T00:00:00Z"}'
    page = ('{"changes":[' + ",".join([*items, tricky]) + "]," + tail).encode()
    reader = hub_scale.PageReader(driver)
    expected = ("4", True, ["t-2", "t-3"])
    assert reader.read_fully(page) == expected
    with monkeypatch.context() as m:  # the hub's layout: read without the full decode
        m.setattr(reader, "read_fully", lambda data: pytest.fail("decoded in full"))
        assert reader.read(page) == expected
        empty = b'{"changes":[],"cursor":"9","more":false,"remaining":0,"server_time":"x"}'
        assert reader.read(empty) == ("9", False, [])
    # The driver's data written otherwise (tx first), or the page's keys in another
    # order: decoded in full, with the same answer.
    odd = _stock(2, driver, "t-2", order=("tx", "sku", "qty", "as_of", "store_id"))
    page = ('{"changes":[' + ",".join([items[0], odd, items[2]]) + "]," + tail).encode()
    assert reader.read(page) == expected
    page = ('{"cursor":"4","more":true,"changes":[' + ",".join(items) + "]}").encode()
    assert reader.read(page) == expected


BURN = """
import os, sys, time
os.fork()  # two processes, each burning 0.5 s of CPU, then saying so and idling
t = time.process_time()
while time.process_time() - t < 0.5:
    pass
os.write(1, b"burnt\\n")  # one write(2) each: the two lines never interleave
time.sleep(60)
"""


def test_cpu_is_summed_over_the_process_tree() -> None:
    sys.path.insert(0, str(BENCH.parent))
    import hub_scale

    parent = subprocess.Popen(
        [sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        assert [parent.stdout.readline() for _ in range(2)] == ["burnt\n"] * 2
        after = hub_scale.tree_cpu(parent.pid, hub_scale.proc_table())
        assert after is not None and len(after) == 2  # the parent and its child
        total, busiest = hub_scale.cpu_delta({}, after)
        # (/proc counts clock ticks, sampled: a tick or two either way)
        assert 0.9 <= total < 2.5 and 0.45 <= busiest < 1.5, (total, busiest)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


# --- The harness stops by itself, whatever the hub does ----------------------------------


def _spawn(*args: str) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    """The harness in the background, its stderr lines collected as they come."""
    proc = subprocess.Popen(
        [sys.executable, str(BENCH), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, lines, reader


def lines_of(lines: list[str], prefix: str) -> list[str]:
    """The harness's verdict lines (not its progress lines) for one count."""
    progress = ("seeded in", "hub pid", "hub ready")
    return [x for x in lines if x.startswith(prefix) and not any(p in x for p in progress)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_hub_frozen_by_sigstop_does_not_hold_the_harness() -> None:
    seconds, drain, allowance = 3, 1, 20
    proc, lines, reader = _spawn(
        "--stores", "3", "--seconds", str(seconds), "--drain", str(drain),
        "--start-allowance", str(allowance), "--post-every", "1", "--changes-per-s", "2",
    )  # fmt: skip
    t0 = time.monotonic()
    hub_pid = None
    try:
        while time.monotonic() - t0 < 60 and not any("loading" in x for x in lines):
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.05)
        hub_pid = int(next(x for x in lines if "hub pid" in x).split()[-1])
        os.kill(hub_pid, signal.SIGSTOP)  # the hub this harness started: frozen for good
        t_stop = time.monotonic()
        bound = seconds + drain + 10 + 15  # the load, its cancel grace, the watchdog's
        proc.wait(timeout=bound + 10)  # stdout (the table) is small: the pipe holds it
        took = time.monotonic() - t_stop
        assert proc.stdout is not None
        out = proc.stdout.read()
        reader.join(5)  # every stderr line read
    finally:
        if proc.poll() is None:
            proc.kill()
        if hub_pid and _alive(hub_pid):
            os.kill(hub_pid, signal.SIGKILL)
    assert took < bound, (took, "".join(lines))
    assert not _alive(hub_pid), "the harness left its frozen hub behind"
    assert "| 3 |" in out
    assert proc.returncode in (0, 1), "".join(lines)
    verdict = lines_of(lines, "[3 stores] ")[-1]
    assert "breaks" in verdict or "did not finish" in verdict, verdict


def test_a_hub_url_that_never_answers_ends_as_did_not_finish(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        done = run_bench(
            "--stores", "3", "--seconds", "2", "--drain", "1", "--start-allowance", "6",
            "--hub-url", f"http://127.0.0.1:{port}", "--hub-data", str(tmp_path / "hub"),
            timeout=60,
        )  # fmt: skip
        took = time.monotonic() - t0
    assert took < 6 + 2 + 1 + 10 + 15, took
    assert done.returncode == 1, done.stderr
    assert "did not finish: start-up: no 200 from" in done.stdout
    assert "did not finish" in done.stderr


def test_the_watchdog_kills_the_hub_and_exits_when_the_harness_is_stuck(tmp_path: Path) -> None:
    script = f"""
import subprocess, sys, threading, time
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(BENCH.parent)!r})
import hub_scale
hub = subprocess.Popen(["sleep", "120"], start_new_session=True)
print("hub", hub.pid, flush=True)
class Cluster:  # what the watchdog needs of a tests.pg.PgCluster
    folder = data = Path({str(tmp_path / "cluster")!r})
    os_user = None
    process = subprocess.Popen(["sleep", "120"], start_new_session=True)
Cluster.folder.mkdir()
print("cluster", Cluster.process.pid, flush=True)
dog = hub_scale.Watchdog(time.monotonic() + 1, 1, lambda phase: print("gave up while", phase))
dog.hub = hub
dog.cluster = Cluster
dog.enter("blocking on purpose")
threading.Event().wait()  # a main thread stuck for good (no timeout, no cancel)
"""
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    took = time.monotonic() - t0
    assert done.returncode == 3, done.stderr
    assert took < 15, took
    assert "gave up while blocking on purpose" in done.stdout
    assert "hard deadline passed while blocking on purpose" in done.stderr
    assert "Thread" in done.stderr  # faulthandler's stacks
    hub_pid = int(done.stdout.split()[1])
    cluster_pid = int(done.stdout.split()[3])
    time.sleep(0.2)
    assert not _alive(hub_pid), "the watchdog left the hub running"
    assert not _alive(cluster_pid), "the watchdog left the PostgreSQL cluster running"
    assert not (tmp_path / "cluster").exists()
