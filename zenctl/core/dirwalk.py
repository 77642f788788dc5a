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


def _root_only(st: os.stat_result) -> bool:
    return st.st_uid == 0 and not st.st_mode & 0o022


def open_dir(directory: str) -> int:
    """A descriptor of `directory` (absolute); OSError naming the symlink or race that made it refuse."""
    stack = [os.open("/", _DIRECTORY)]
    todo = directory.split("/")[::-1]
    hops = 0
    try:
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            parent = stack[-1]
            seen = os.stat(part, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(seen.st_mode):
                hops += 1
                if not _root_only(os.fstat(parent)) or hops > MAX_HOPS:
                    raise OSError(errno.ELOOP, f"{part} is a symlink in a directory others can change; not "
                                               f"following it on the way to {directory}")
                target = os.readlink(part, dir_fd=parent)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo.extend(target.split("/")[::-1])
                continue
            stack.append(os.open(part, _DIRECTORY, dir_fd=parent))
            if os.fstat(stack[-1]).st_ino != seen.st_ino:
                raise OSError(errno.EAGAIN, f"{part} was replaced while walking to {directory}")
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def open_parent(path: str) -> tuple[int, str]:
    """(descriptor of `path`'s directory, its last name), walked as `open_dir`."""
    directory, name = os.path.split(os.path.abspath(path))
    return open_dir(directory), name
