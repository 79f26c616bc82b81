"""benchmarks/hub_scale.py keeps working: a few simulated stores against a real hub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(out.read_text())["runs"]
    assert run["stores"] == 3
    assert run["changes"] >= 2
    assert run["deliveries_expected"] == 3 * run["changes"]
    assert run["never_delivered_share"] == 0
    assert run["delivery_p95_s"] < 2
    assert run["posts"] >= 3 and run["posts_unanswered"] == 0
    assert run["failed"] == 0, run["errors"]
    assert run["hub_cpu_pct"] is not None and run["hub_rss_peak_mb"] > 0
    assert run["verdict"] == "holds"
    assert "| 3 |" in done.stdout  # the table


def test_a_backend_the_hub_does_not_have_is_refused() -> None:
    done = run_bench("--stores", "3", "--seconds", "3", "--backend", "postgresql")
    assert done.returncode == 2
    assert "comes with issue 11" in done.stderr
    done = run_bench("--stores", "3", "--seconds", "3", "--workers", "4")
    assert done.returncode == 2
