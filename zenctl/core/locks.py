"""Run locks: one run per agent at a time, across processes, released by the kernel if a run dies."""

import fcntl
import os
from pathlib import Path

from zenctl.core import sharing


class RunLock:
    """An exclusive, non-blocking flock on `<state file>.locks/<agent>.lock`; the holder's pid is written in."""

    def __init__(self, state_path: Path, agent: str):
        self._state_path = state_path
        self.path = Path(f"{state_path}.locks") / f"{agent}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when taken; False when another process holds it."""
        sharing.make_dir(self.path.parent, self._state_path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if os.fstat(fd).st_uid == os.geteuid():
            sharing.fix_file(fd, self._state_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the current holder, or '?'."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
