"""File-system repairs (the seed's "missing directories" and "incorrect permissions (chmod/chown)").

Modes and owners are changed through an `O_PATH | O_NOFOLLOW` descriptor of the path itself: a symlink at the
path is refused, never followed, and a path swapped for another file after it was observed is refused too
(its inode must be the one the agent saw).

Parameters, as the System Health agent proposes them:
  fs.mkdir / fs.touch: path, mode (int or None), uid, gid (int or -1 to leave)
  fs.chmod: path, mode, from_mode, inode
  fs.chown: path, uid, gid, from_uid, from_gid, inode
"""

import os
import stat
from contextlib import contextmanager

from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register


@contextmanager
def _no_follow(path: str, inode: int | None = None):
    """A descriptor of `path` itself; ActionFailed if it is a symlink, missing, or not the observed inode."""
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ActionFailed(f"{path} does not exist") from None
    except OSError as exc:
        raise ActionFailed(f"cannot open {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            raise ActionFailed(f"{path} is a symlink; zenctl does not follow symlinks when fixing modes or owners")
        if inode is not None and st.st_ino != inode:
            raise ActionFailed(f"{path} was replaced since it was observed; not touching the new file")
        yield fd, st
    finally:
        os.close(fd)


def _set_mode(fd: int, mode: int) -> None:
    os.chmod(f"/proc/self/fd/{fd}", mode)  # the magic link reaches the inode; fchmod refuses O_PATH


def _set_owner(fd: int, uid: int, gid: int) -> None:
    os.chown(f"/proc/self/fd/{fd}", uid, gid)


def _owner_text(uid: int, gid: int) -> str:
    return f"{'-' if uid < 0 else uid}:{'-' if gid < 0 else gid}"


def _ownership_problem(path: str, p: dict) -> str | None:
    st = os.lstat(path)
    if p.get("mode") is not None and stat.S_IMODE(st.st_mode) != p["mode"]:
        return f"mode of {path} is {stat.S_IMODE(st.st_mode):04o}, want {p['mode']:04o}"
    if p.get("uid", -1) >= 0 and st.st_uid != p["uid"]:
        return f"owner of {path} is uid {st.st_uid}, want {p['uid']}"
    if p.get("gid", -1) >= 0 and st.st_gid != p["gid"]:
        return f"group of {path} is gid {st.st_gid}, want {p['gid']}"
    return None


def _settle_new(p: dict, default_mode: int) -> None:
    """Give a path just created its wanted mode (umask-independent) and owner."""
    with _no_follow(p["path"]) as (fd, _):
        _try(p["path"], lambda: _set_mode(fd, p["mode"] if p.get("mode") is not None else default_mode & ~_umask()))
        if p.get("uid", -1) >= 0 or p.get("gid", -1) >= 0:
            _try(p["path"], lambda: _set_owner(fd, p.get("uid", -1), p.get("gid", -1)))


def _new_problem(p: dict, is_type, what: str) -> str | None:
    try:
        st = os.lstat(p["path"])
    except OSError:
        return f"{p['path']} does not exist"
    if not is_type(st.st_mode):
        return f"{p['path']} is not {what}"
    return _ownership_problem(p["path"], p)


def _describe_new(what: str, p: dict) -> str:
    extra = []
    if p.get("mode") is not None:
        extra.append(f"mode {p['mode']:04o}")
    if p.get("uid", -1) >= 0 or p.get("gid", -1) >= 0:
        extra.append(f"owner {_owner_text(p.get('uid', -1), p.get('gid', -1))}")
    return f"create {what} {p['path']}" + (f" ({', '.join(extra)})" if extra else "")


def _try(path: str, operation) -> None:
    try:
        operation()
    except PermissionError:
        raise ActionFailed(f"permission denied on {path} (zenctl runs as uid {os.geteuid()})") from None
    except OSError as exc:
        raise ActionFailed(f"{path}: {exc.strerror}") from None


@register
class MakeDirectory(ActionKind):
    name = "fs.mkdir"
    summary = "Create a missing directory (and missing parents), then set its mode and owner."
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        parents = _missing_parents(p["path"])
        return _describe_new("directory", p) + (f", with parents {', '.join(parents)}" if parents else "")

    def changes(self, proposal: Proposal) -> list[str]:
        return [*_missing_parents(proposal.params["path"]), proposal.params["path"]]

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        change = self.preview(proposal)
        created = [*_missing_parents(p["path"]), p["path"]]
        for path in created:
            try:
                os.mkdir(path, 0o700)  # tightened until the wanted mode is set below
            except FileExistsError:
                raise ActionFailed(f"{path} appeared since it was observed; not touching it") from None
            except OSError as exc:
                raise ActionFailed(f"cannot create {path}: {exc.strerror}") from None
            if path != p["path"]:
                _try(path, lambda path=path: os.chmod(path, 0o755 & ~_umask()))
        _settle_new(p, 0o777)
        return Applied(change, {"existed": False, "created": created})

    def verify(self, proposal: Proposal) -> str | None:
        return _new_problem(proposal.params, stat.S_ISDIR, "a directory")


@register
class TouchFile(ActionKind):
    name = "fs.touch"
    summary = "Create a missing empty file, then set its mode and owner."
    reversible = True

    def changes(self, proposal: Proposal) -> list[str]:
        return [proposal.params["path"]]

    def preview(self, proposal: Proposal) -> str:
        return _describe_new("empty file", proposal.params)

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        try:
            fd = os.open(p["path"], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise ActionFailed(f"{p['path']} appeared since it was observed; not touching it") from None
        except OSError as exc:
            raise ActionFailed(f"cannot create {p['path']}: {exc.strerror}") from None
        os.close(fd)
        _settle_new(p, 0o666)
        return Applied(self.preview(proposal), {"existed": False})

    def verify(self, proposal: Proposal) -> str | None:
        return _new_problem(proposal.params, stat.S_ISREG, "a regular file")


@register
class ChangeMode(ActionKind):
    name = "fs.chmod"
    summary = "Set a path's permission bits, never following a symlink."
    reversible = True

    def changes(self, proposal: Proposal) -> list[str]:
        return [proposal.params["path"]]

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return f"mode of {p['path']} {p['from_mode']:04o} -> {p['mode']:04o}"

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        with _no_follow(p["path"], p.get("inode")) as (fd, st):
            _try(p["path"], lambda: _set_mode(fd, p["mode"]))
        return Applied(self.preview(proposal), {"mode": stat.S_IMODE(st.st_mode)})

    def verify(self, proposal: Proposal) -> str | None:
        return _ownership_problem(proposal.params["path"], {"mode": proposal.params["mode"]})


@register
class ChangeOwner(ActionKind):
    name = "fs.chown"
    summary = "Set a path's owner and group, never following a symlink."
    reversible = True

    def changes(self, proposal: Proposal) -> list[str]:
        return [proposal.params["path"]]

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        return (f"owner of {p['path']} {_owner_text(p['from_uid'], p['from_gid'])} -> "
                f"{_owner_text(p['uid'], p['gid'])}")

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        with _no_follow(p["path"], p.get("inode")) as (fd, st):
            _try(p["path"], lambda: _set_owner(fd, p["uid"], p["gid"]))
        return Applied(self.preview(proposal), {"uid": st.st_uid, "gid": st.st_gid})

    def verify(self, proposal: Proposal) -> str | None:
        p = proposal.params
        return _ownership_problem(p["path"], {"uid": p["uid"], "gid": p["gid"]})


def _missing_parents(path: str) -> list[str]:
    """Ancestors of `path` that do not exist, outermost first."""
    missing = []
    parent = os.path.dirname(path)
    while parent and parent != "/" and not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return list(reversed(missing))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
