"""A private PostgreSQL server for fault tests: a cluster made by initdb in a temporary folder,
listening on its own loopback port, started and stopped with pg_ctl, so that a test may kill it
without touching any other database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_PG_LIB = Path("/usr/lib/postgresql")  # where Debian and Ubuntu install the binaries, per version


def postgres_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: on the PATH, else the newest Debian-style install."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = [p.parent for p in _PG_LIB.glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    return max(versions, key=lambda b: int(b.parent.name), default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """A fresh cluster; ``start``, ``stop`` and ``start`` again at will; ``close`` removes it.

    initdb and postgres refuse to run as root: then they run as the ``postgres`` OS user, in a
    folder of its own (pytest's temporary folders are private to the user running the tests)."""

    def __init__(self, bindir: Path, folder: Path) -> None:
        self._bin = bindir
        self._as: list[str] = []
        self._made: Path | None = None
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root needs runuser to start PostgreSQL as the "
                                   "postgres user")
            self._as = ["runuser", "-u", "postgres", "--"]
            self._made = folder = Path(tempfile.mkdtemp(prefix="warden-test-pg-"))
            shutil.chown(folder, "postgres", "postgres")
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        try:
            self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                     "--no-sync", "-E", "UTF8", "--locale=C")
        except BaseException:
            self.close()
            raise

    def _pg(self, program: str, *args: str) -> None:
        done = subprocess.run([*self._as, str(self._bin / program), *args], capture_output=True,
                              text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}): "
                               f"{done.stdout}{done.stderr}{self.logged()}")

    def logged(self) -> str:
        """The server's log so far (for failure messages)."""
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> None:
        """Start the server and wait until it accepts connections (after crash recovery)."""
        # TCP on loopback only: no Unix socket that could clash with a system server's folder.
        # fsync=off: a stopped server process loses nothing the OS already holds, and it is fast.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= "
                   "-c fsync=off -c full_page_writes=off")
        self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
                 "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` kills it as a crash would (connections cut)."""
        self._pg("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)

    def close(self) -> None:
        """Stop the server if it runs, and remove what ``__init__`` made."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("fast")
        finally:
            if self._made is not None:
                shutil.rmtree(self._made, ignore_errors=True)
