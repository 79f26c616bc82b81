"""A throwaway PostgreSQL cluster for tests: Debian's server, never a mock.

Import the fixtures in a test module with ``from .pg import *  # noqa: F403`` (or list
``tests.pg`` in conftest's ``pytest_plugins``):

- ``pg_cluster`` (session): a :class:`PgCluster` started once per test session in a
  temporary folder (data, socket and log inside it), on a free 127.0.0.1 port, fsync off;
  stopped and removed at the end of the session, failed tests or not.
- ``pg_url`` (session): ``postgresql://kiosk@127.0.0.1:PORT/kiosk_test``, a database
  created once for the session.
- ``pg_database`` (per test): a fresh empty database of its own (``CREATE DATABASE ...
  TEMPLATE template0``, a few milliseconds), dropped after the test.

``initdb`` refuses to run as root: as root, the cluster runs as Debian's ``postgres``
system user (made by the ``postgresql`` package), or as ``kiosk-pg`` (created with
``useradd --system``) where there is none; as anyone else, as that user. ``make test``
installs Debian's ``postgresql`` first (the Makefile's ``postgresql`` target). Set
``KIOSK_PG_BIN`` to use another server's ``bin`` folder.

A cluster left behind by a test run killed outright (SIGKILL: no finaliser runs) is
stopped by the next session's start: each cluster folder records the pid of the pytest
that owns it, and a folder whose owner is gone is swept.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PgCluster", "pg_cluster", "pg_url", "pg_database", "start_cluster", "target"]

SUPERUSER = "kiosk"
SESSION_DB = "kiosk_test"
PREFIX = "kiosk-pg-"
START_TIMEOUT = 30.0
FALLBACK_OS_USER = "kiosk-pg"


def pg_bin() -> Path:
    """The folder of Debian's server binaries (newest version installed)."""
    if os.environ.get("KIOSK_PG_BIN"):
        return Path(os.environ["KIOSK_PG_BIN"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    pytest.fail(
        "PostgreSQL's server is not installed: `make postgresql` (Debian's `postgresql` "
        "package) or KIOSK_PG_BIN=/path/to/bin"
    )


def _os_user() -> str | None:
    """The unprivileged user the server runs as (None: run as ourselves, not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            + [FALLBACK_OS_USER],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        pytest.fail(
            f"initdb refuses root, and no unprivileged user could be made for it "
            f"(useradd --system {FALLBACK_OS_USER}: {detail})"
        )
    return FALLBACK_OS_USER


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_orphans(tmp_root: str | None = None) -> list[str]:
    """Stop and remove clusters whose owning test process died without cleaning up."""
    swept = []
    for folder in glob.glob(os.path.join(tmp_root or tempfile.gettempdir(), PREFIX + "*")):
        owner_file = Path(folder, "owner.pid")
        try:
            owner = int(owner_file.read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being made
        if _pid_alive(owner):
            continue
        data = Path(folder, "data")
        pid_file = data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int(pid_file.read_text().splitlines()[0])
            if _pid_alive(postmaster):
                subprocess.run(
                    _as_user(
                        _os_user(), [str(pg_bin() / "pg_ctl"), "stop", "-D", str(data), "-m", "i"]
                    ),
                    capture_output=True,
                    timeout=30,
                )
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(folder)
    return swept


class PgCluster:
    """One running server: ``url(db)`` for a database, ``create_database`` / ``drop_database``."""

    def __init__(self, folder: Path, port: int, os_user: str | None) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "sock"
        self.log = folder / "server.log"
        self.port = port
        self.os_user = os_user
        self.host = "127.0.0.1"
        self.user = SUPERUSER
        self.process: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kw):
        import psycopg

        return psycopg.connect(self.url(database), **kw)

    def create_database(self, name: str, template: str = "template0") -> str:
        """A new empty database (or a copy of ``template``, which nobody may be using)."""
        from psycopg import sql

        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect(autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_user(
                    self.os_user,
                    [str(pg_bin() / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"],
                ),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def _wait_accepting(cluster: PgCluster, proc: subprocess.Popen, deadline: float) -> None:
    """Poll until the server answers a real connection (no fixed sleep)."""
    import psycopg

    delay = 0.005
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"postgres exited with {proc.returncode} before accepting connections:\n"
                + cluster.server_log()
            )
        try:
            with psycopg.connect(cluster.url(), connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            last = exc
        time.sleep(delay)  # back-off between polls, not a wait for a guessed duration
        delay = min(delay * 2, 0.1)
    raise TimeoutError(
        f"postgres did not accept connections within {START_TIMEOUT:.0f} s ({last}):\n"
        + cluster.server_log()
    )


def start_cluster(settings: dict[str, str] | None = None) -> PgCluster:
    """initdb + start a cluster in a new temporary folder; the caller stops it."""
    sweep_orphans()
    bin_dir = pg_bin()
    os_user = _os_user()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    (folder / "owner.pid").write_text(str(os.getpid()))
    try:
        (folder / "sock").mkdir()
        if os_user is not None:
            entry = pwd.getpwnam(os_user)
            for path in (folder, folder / "sock"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        data = folder / "data"
        init = subprocess.run(
            _as_user(
                os_user,
                [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
                + ["--encoding=UTF8", "--locale=C", "--no-sync"],
            ),
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{folder / 'sock'}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            **(settings or {}),
        }
        with open(data / "postgresql.conf", "a") as fh:
            fh.write("\n# tests/pg.py\n")
            fh.writelines(f"{key} = {value}\n" for key, value in conf.items())
        last_error: Exception | None = None
        for _attempt in range(3):  # a port seen free can be taken before the server binds it
            port = _free_port()
            cluster = PgCluster(folder, port, os_user)
            log = open(cluster.log, "ab")
            proc = subprocess.Popen(
                _as_user(os_user, [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port)]),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
                start_new_session=True,  # Ctrl-C in the terminal reaches pytest, not the server
            )
            log.close()
            try:
                _wait_accepting(cluster, proc, time.monotonic() + START_TIMEOUT)
                cluster.process = proc
                return cluster
            except RuntimeError as exc:
                last_error = exc
                if "could not bind" not in cluster.server_log():
                    raise
        raise RuntimeError(f"no free port for postgres after 3 tries: {last_error}")
    except BaseException:
        PgCluster(folder, 0, os_user).stop()
        raise


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster) -> str:
    """A database for the whole test session: postgresql://kiosk@127.0.0.1:PORT/kiosk_test."""
    return pg_cluster.create_database(SESSION_DB)


_counter = iter(range(1, 1 << 30))


@pytest.fixture
def pg_database(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh empty database for one test (its URL), dropped afterwards."""
    name = f"t{os.getpid()}_{next(_counter)}"
    url = pg_cluster.create_database(name)
    try:
        yield url
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh empty hub database lives, once per backend: an SQLite file, then a
    database of the throwaway cluster (tests run on both through this one fixture)."""
    if request.param == "sqlite":
        return str(tmp_path / "hub.db")
    return request.getfixturevalue("pg_database")
