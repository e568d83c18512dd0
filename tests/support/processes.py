"""Start and stop the real servers tests need, each in its own process group.

Every process started here is stopped at teardown, at interpreter exit (``atexit``) and on
SIGTERM, so an interrupted test run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

_RUNNING: list[ManagedProcess] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class ProcessExited(RuntimeError):
    """The process we are waiting for died: waiting longer cannot help."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``check`` until it is true; errors count as "not yet", except ``ProcessExited``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ProcessExited:
            raise
        except Exception as exc:  # the server is still starting
            last = exc
        time.sleep(interval)
    detail = f" (last: {last})" if last else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s{detail}")


class ManagedProcess:
    """A server process in its own session, logging to a file, stopped with its whole group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            user=self.user,
            start_new_session=True,
        )
        log.close()
        _RUNNING.append(self)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.alive():
                raise ProcessExited(f"{self.name} exited:\n{self.log_tail()}")
            return check()

        wait_until(ready, timeout, self.name)

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(ValueError):
            _RUNNING.remove(self)


def disown(proc: ManagedProcess) -> None:
    """Let ``proc`` outlive this interpreter (``make cluster`` detaches its control plane)."""
    with contextlib.suppress(ValueError):
        _RUNNING.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(_RUNNING)):
        proc.stop(timeout=5)


atexit.register(stop_all)


def _on_sigterm(signum: int, _frame: object) -> None:
    stop_all()
    raise SystemExit(128 + signum)


with contextlib.suppress(ValueError):  # imported off the main thread: atexit still covers us
    signal.signal(signal.SIGTERM, _on_sigterm)
