"""``kiosk demo --port P`` checks every port it will use before starting anything."""

from __future__ import annotations

import socket

from .conftest import free_base_port, run_kiosk


def test_a_taken_port_is_named_and_nothing_starts(tmp_path):
    base = free_base_port()
    with socket.socket() as taken:  # something else already listens on the second store's port
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        data = tmp_path / "demo"
        done = run_kiosk("demo", "--data", str(data), "--port", str(base), "--products", "20")
    assert done.returncode != 0
    assert f"port {base + 1}" in done.stderr and "store" in done.stderr
    assert "--port" in done.stderr  # says how to choose another
    assert not data.exists()  # checked before seeding or starting anything


def test_the_hub_port_is_checked_too(tmp_path):
    base = free_base_port()
    with socket.socket() as hub:  # P+10: the hub's
        hub.bind(("127.0.0.1", base + 10))
        hub.listen()
        done = run_kiosk("demo", "--data", str(tmp_path / "d"), "--port", str(base))
    assert done.returncode != 0 and f"port {base + 10} (the hub)" in done.stderr


def test_a_base_port_whose_hub_port_cannot_exist_is_refused(tmp_path):
    done = run_kiosk("demo", "--data", str(tmp_path / "d"), "--port", "65530")
    assert done.returncode == 2 and "--port" in done.stderr
