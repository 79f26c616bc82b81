"""``kiosk demo --port P`` checks every port it will use before starting anything."""

from __future__ import annotations

import socket

from .conftest import run_kiosk


def _free_base() -> tuple[int, list[socket.socket]]:
    """A base port P with P, P+1, P+2 and P+10 all free right now (held until released)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 10 > 65525:
            continue
        held = []
        try:
            for offset in (0, 1, 2, 10):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", base + offset))
        except OSError:
            for sock in held:
                sock.close()
            continue
        return base, held
    raise RuntimeError("no free run of ports")


def test_a_taken_port_is_named_and_nothing_starts(tmp_path):
    base, held = _free_base()
    for sock in held:
        sock.close()
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
    base, held = _free_base()
    for sock in held[:3]:
        sock.close()
    held[3].listen()  # P+10: the hub's
    try:
        done = run_kiosk("demo", "--data", str(tmp_path / "d"), "--port", str(base))
    finally:
        held[3].close()
    assert done.returncode != 0 and f"port {base + 10} (the hub)" in done.stderr


def test_a_base_port_whose_hub_port_cannot_exist_is_refused(tmp_path):
    done = run_kiosk("demo", "--data", str(tmp_path / "d"), "--port", "65530")
    assert done.returncode == 2 and "--port" in done.stderr
