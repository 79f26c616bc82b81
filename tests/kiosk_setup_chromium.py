"""Helpers for the kiosk-setup browser tests: render the installer's files with
``install.sh --root`` and run Debian's Chromium with the rendered managed policies
mounted over ``/etc/chromium`` in a private mount namespace (the host's /etc/chromium
is never touched)."""

from __future__ import annotations

import http.server
import os
import shlex
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "kiosk-setup" / "install.sh"
CHROMIUM = "/usr/bin/chromium"
POLICY = "etc/chromium/policies/managed/kiosk.json"


def render_kiosk(root: Path, port: int) -> Path:
    """``install.sh --root ROOT --role kiosk --port PORT``: the files a kiosk box gets."""
    secret = root.parent / f"{root.name}-secret"
    secret.write_text("00ff" * 16 + "\n")
    result = subprocess.run(
        [
            "bash",
            str(INSTALL),
            "--role",
            "kiosk",
            "--hub-url",
            "https://hub.example.com",
            "--store-id",
            "st-1",
            "--store-secret-file",
            str(secret),
            "--root",
            str(root),
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (root / POLICY).is_file(), f"no {POLICY} rendered: {result.stdout}"
    return root


def in_mount_namespace(
    etc_chromium: Path, command: list[str], more: dict[str, Path] | None = None
) -> list[str]:
    """``command`` run in a private mount namespace with ``etc_chromium`` bind-mounted
    over /etc/chromium (``unshare -m`` as root, ``unshare -rm`` otherwise), and each
    ``more`` {target: source} bind-mounted too."""
    assert Path("/etc/chromium").is_dir(), "Debian's chromium package is not installed"
    unshare = ["unshare", "-m", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare.insert(1, "-r")
    mounts = {"/etc/chromium": etc_chromium, **(more or {})}
    script = " && ".join(
        f"mount --bind {shlex.quote(str(src))} {shlex.quote(target)}"
        for target, src in mounts.items()
    )
    return [*unshare, "sh", "-c", script + ' && exec "$@"', "sh", *command]


class CountingServer:
    """A tiny http.server on a free loopback port that counts the requests it gets."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                body = b"<html><body><h1 id='other'>NOT THE KIOSK</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"


@contextmanager
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def stop(proc: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session=True`` and its whole group."""
    for sig in (15, 9):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
