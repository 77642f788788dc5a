"""Run locks: one run per agent at a time, across processes, released by the kernel if a run dies."""

import fcntl
import os
import stat
from pathlib import Path

from zenctl.core import sharing
from zenctl.errors import StateError


class RunLock:
    """An exclusive, non-blocking flock on `<state file>.locks/<agent>.lock`; the holder's pid is written in."""

    def __init__(self, state_path: Path, agent: str):
        self._state_path = state_path
        self.path = Path(f"{state_path}.locks") / f"{agent}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        """True when taken; False when another process holds it. The locks directory is group-writable with a
        shared state, so the lock file is opened without following a symlink or blocking on a FIFO, and must be
        a regular file with one name: root never truncates a file someone else pointed it at."""
        directory = sharing.open_dir(self.path.parent, self._state_path)
        try:
            fd = os.open(self.path.name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK,
                         0o600, dir_fd=directory)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot open the run lock ({exc.strerror}); if it is a symlink, "
                             "remove it") from None
        finally:
            os.close(directory)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise StateError(f"{self.path}: is not a plain lock file (a FIFO, device or hard link was put there); "
                             "remove it")
        if st.st_uid == os.geteuid():
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
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return "?"
        try:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
        finally:
            os.close(fd)
        return text if text.isdigit() else "?"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
