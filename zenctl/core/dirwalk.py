"""Opening a directory by path without being steered: walked from / one name at a time, relative to descriptors.

Root acts on paths in directories other accounts write (a service account's data, a log directory). A symlink
there, swapped in for a directory on the way, would send root anywhere (`/var/tmp/app/d -> /etc`). A symlink is
followed only where root alone could have placed it (its directory is root's and writable by nobody else, as
`/var/run -> /run`); anywhere else the walk refuses (OSError), and so does a directory replaced while it is
walked. What follows is then done relative to the descriptor (`*at` calls), never by name from /.
"""

import errno
import os
import stat

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_HOPS = 40


def others_can_change(st: os.stat_result) -> str | None:
    """Who besides root could change a directory ('others'), or None when root alone can."""
    return None if st.st_uid == 0 and not st.st_mode & 0o022 else "others"


def open_dir(directory: str, changers=others_can_change, passed: list | None = None) -> int:
    """A descriptor of `directory` (absolute); OSError naming the symlink or race that made it refuse. A symlink
    is followed only where `changers(stat of its directory)` says nobody but root could have placed it;
    `passed` collects (path, stat) of every directory walked through (also those left by .. or a symlink), for
    callers that judge them."""
    from zenctl.core.untrusted import name as shown

    stack = [("/", os.open("/", _DIRECTORY))]
    if passed is not None:
        passed.append(("/", os.fstat(stack[0][1])))
    todo = directory.split("/")[::-1]
    hops = 0
    try:
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop()[1])
                continue
            here, parent = stack[-1]
            path = os.path.join(here, part)
            seen = os.stat(part, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(seen.st_mode):
                who = changers(os.fstat(parent))
                if who:
                    raise OSError(errno.ELOOP, f"{shown(path)} is a symlink in a directory {who} can change; refused")
                hops += 1
                if hops > MAX_HOPS:
                    raise OSError(errno.ELOOP, f"{shown(directory)}: too many symlinks")
                target = os.readlink(part, dir_fd=parent)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop()[1])
                todo.extend(target.split("/")[::-1])
                continue
            stack.append((path, os.open(part, _DIRECTORY, dir_fd=parent)))
            st = os.fstat(stack[-1][1])
            if passed is not None:
                passed.append((path, st))
            if st.st_ino != seen.st_ino:
                raise OSError(errno.EAGAIN, f"{shown(path)} was replaced while it was checked")
        return stack.pop()[1]
    finally:
        for _, fd in stack:
            os.close(fd)


def open_parent(path: str) -> tuple[int, str]:
    """(descriptor of `path`'s directory, its last name), walked as `open_dir`."""
    directory, name = os.path.split(os.path.abspath(path))
    return open_dir(directory), name
