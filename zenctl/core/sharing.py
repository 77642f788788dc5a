"""The state shared by service accounts: one group, files 0660 and directories 2770.

Alone, zenctl keeps its state private (0600 files, 0700 directories). When agents run as separate accounts
(`run_as`), root shares the state directory, the state file, the run locks and the snapshot store with the
agents' group before it drops privileges. The directories are setgid, so everything created later inherits the
group; whatever zenctl creates beside a shared state file is made group-writable explicitly, whatever the umask
(cron's is 022), except snapshot copies of files that were private: they stay readable by their creator only.
SQLite gives its -wal and -shm files the database file's mode and, for root, its owner. Only a directory that
holds nothing but the state is shared, so a home directory or /tmp is never opened up to the group.
"""

import os
import stat
from pathlib import Path

from zenctl.errors import StateError

PRIVATE = (0o700, 0o600)
SHARED = (0o2770, 0o660)


def modes(state_path: Path) -> tuple[int, int]:
    """(directory mode, file mode) for what zenctl creates beside the state file."""
    try:
        st = os.stat(state_path)
    except OSError:
        return PRIVATE
    return SHARED if st.st_mode & 0o060 == 0o060 else PRIVATE


def open_dir(path: Path | str, state_path: Path, dir_fd: int | None = None) -> int:
    """A descriptor of a directory beside the state (`path` relative to `dir_fd` if given), created with the mode
    its sharing calls for (umask notwithstanding). With a shared state a group member can write there, so a
    symlink in its place is refused (StateError), never followed: everything below is then opened relative to
    the descriptor."""
    dir_mode, _ = modes(state_path)
    try:
        os.mkdir(path, dir_mode & 0o777, dir_fd=dir_fd)
        created = True
    except FileExistsError:
        created = False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise StateError(f"{path}: is not a directory zenctl can use beside its state ({exc.strerror}); "
                         "something else was put in its place: remove it") from None
    if created:
        os.fchmod(fd, dir_mode)
    return fd


def fix_file(fd: int, state_path: Path) -> None:
    """Give a file zenctl just created beside the state the mode its sharing calls for."""
    os.fchmod(fd, modes(state_path)[1])


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def share(state_path: Path, gid: int) -> None:
    """As root: make the state directory, file, locks and snapshots group `gid`, 2770/0660. Refuses a directory
    that is not zenctl's own (world-writable, like /tmp) and a state already shared with another group."""
    directory = state_path.parent
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    st = os.stat(directory)
    if st.st_mode & (stat.S_IWOTH | stat.S_ISVTX):
        raise StateError(f"{directory}: is world-writable; to share the state with run_as accounts keep it in a "
                         "directory of its own (e.g. --db /var/lib/zenctl/zenctl.db)")
    if st.st_gid not in (0, gid) and st.st_mode & 0o070 == 0o070:
        raise StateError(f"{directory}: is shared with group {_group_name(st.st_gid)!r} but this agent runs as "
                         f"group {_group_name(gid)!r}: give every run_as the same group (USER:GROUP)")
    if st.st_gid == gid and stat.S_IMODE(st.st_mode) == SHARED[0] and _file_shared(state_path, gid):
        return  # the usual case on every run after the first: a few stats
    mine = {state_path.name + suffix
            for suffix in ("", "-wal", "-shm", "-journal", ".locks", ".snapshots", ".keys", ".reserve")}
    others = sorted(set(os.listdir(directory)) - mine)
    if others:
        raise StateError(f"{directory}: holds other files too ({', '.join(others[:3])}); to share the state with "
                         "run_as accounts keep it in a directory of its own (e.g. --db /var/lib/zenctl/zenctl.db)")
    _set(directory, gid, SHARED[0])
    if not state_path.exists():
        os.close(os.open(state_path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{state_path}{suffix}")
        if path.exists():
            _set(path, gid, SHARED[1])
    for tree, file_mode in ((Path(f"{state_path}.locks"), SHARED[1]), (Path(f"{state_path}.snapshots"), None)):
        top = open_dir(tree, state_path)  # a symlink put in its place is refused, never walked into
        try:
            owner = os.fstat(top).st_uid
            if owner != os.geteuid():
                raise StateError(f"{tree}: is owned by uid {owner}, not by zenctl's owner; something else was put "
                                 "in its place: remove it")
            _set(".", gid, SHARED[0], top)
            for _, dirs, files, here in os.fwalk(dir_fd=top):  # by descriptor; symlinks are not followed
                for name in dirs:
                    _set(name, gid, SHARED[0], here)
                for name in files:  # snapshot copies keep their mode: a copy of a private file stays private
                    _set(name, gid, file_mode, here)
        finally:
            os.close(top)


def _file_shared(path: Path, gid: int) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return st.st_gid == gid and st.st_mode & 0o060 == 0o060


def _set(path: Path | str, gid: int, mode: int | None, dir_fd: int | None = None) -> None:
    """Give a directory or regular file the group (and mode). What a group member may have planted is left alone:
    symlinks, FIFOs (an open would block), devices, sockets, and files with other names (hard links)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
    except OSError:
        return  # a symlink (ELOOP), a socket (ENXIO) or gone: not ours to share
    try:
        st = os.fstat(fd)
        if not (stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1)):
            return
        os.fchown(fd, -1, gid)
        if mode is not None:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
