"""Service accounts (the seed's least privilege): an agent with `run_as` runs as that user, never as root.

Root resolves the account, shares the state with its group (see `sharing`), and drops to it (supplementary
groups cleared, then gid, then uid, so there is no way back) before the agent observes anything. Every path the
run needs (config, state) is resolved before the drop, so the account's own $HOME does not change them.
"""

import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from zenctl.errors import ConfigError, UsageError


@dataclass(frozen=True)
class Account:
    user: str
    uid: int
    group: str
    gid: int
    home: str


def resolve(agent: str, run_as: str) -> Account:
    """The account named by `agents.AGENT.run_as` (USER or USER:GROUP); ConfigError when it does not exist."""
    import grp

    user, _, group = run_as.partition(":")
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"agents.{agent}.run_as: no such user {user!r} on this host") from None
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ConfigError(f"agents.{agent}.run_as: no such group {group!r} on this host") from None
    else:
        gid = entry.pw_gid
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
    return Account(user, entry.pw_uid, group, gid, entry.pw_dir)


def current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def account_for(agent: str, run_as: str | None) -> Account | None:
    """The account to switch to before running `agent`, or None to run as we are. UsageError when a non-root
    user is asked to run an agent configured for another account."""
    if not run_as:
        return None
    account = resolve(agent, run_as)
    euid = os.geteuid()
    if euid == account.uid:
        return None  # already that account (a system crontab's user column)
    if euid != 0:
        raise UsageError(f"agents.{agent}.run_as is {run_as!r} but zenctl runs as {current_user()!r}: run it as "
                         f"root (it then switches to {account.user}) or as {account.user} itself")
    return account


def switch_to(account: Account, state_path: Path, agent: str = "") -> None:
    """As root: check the account can run this zenctl at all, share the state with its group, give it a seal
    key, then become the account for good (keeping no key but its own)."""
    from zenctl.core import seals, sharing

    unreachable = _unreachable(account)
    if unreachable:
        where = f"agents.{agent}.run_as" if agent else "run_as"
        raise ConfigError(f"{where}: account {account.user!r} cannot run zenctl: {unreachable}; install zenctl "
                          "where every account can read it (e.g. a venv under /opt) or give the account search (x) "
                          "permission on that directory")
    sharing.share(state_path, account.gid)
    seals.ensure_key(state_path, account.uid, account.gid)
    seals.forget()
    _drop(account.uid, account.gid)
    os.environ.update(HOME=account.home, USER=account.user, LOGNAME=account.user)
    os.umask(0o007)


def _drop(uid: int, gid: int) -> None:
    """Supplementary groups cleared, then gid, then uid: there is no way back."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _unreachable(account: Account) -> str | None:
    """Why the account could not load this Python and zenctl after the drop (a pyenv under a 0700 /root), else
    None: every directory on the way to the interpreter, the standard library and zenctl needs search (x)
    permission for the account's uid and gid (supplementary groups are cleared), the last two read (r) too."""
    import sysconfig

    import zenctl

    wanted = [(os.path.realpath(sys.executable), os.X_OK),
              (os.path.realpath(sysconfig.get_paths()["stdlib"]), os.R_OK | os.X_OK),
              (os.path.realpath(os.path.dirname(zenctl.__file__)), os.R_OK | os.X_OK)]
    for target, last in wanted:
        parts = Path(target).parts
        for depth in range(1, len(parts) + 1):
            path = os.path.join(*parts[:depth])
            need = last if depth == len(parts) else os.X_OK
            if not _may(path, account, need):
                st = os.stat(path)
                return (f"{path} is {stat.S_IMODE(st.st_mode):04o} owned by uid {st.st_uid}, gid {st.st_gid} "
                        f"(needed for {target})")
    return None


def _may(path: str, account: Account, need: int) -> bool:
    """Whether the account (uid, gid, no other groups) has `need` on `path`, by its mode bits."""
    st = os.stat(path)
    if st.st_uid == account.uid:
        bits = (st.st_mode >> 6) & 7
    elif st.st_gid == account.gid:
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & need == need


CALL_AS_SECONDS = 300.0  # a step acting as an account; that account can stop the child (SIGSTOP), so bound it
CALL_AS_BYTES = 16 << 20  # what the child may answer


def call_as(uid: int, gid: int, function, *args, seconds: float = CALL_AS_SECONDS):
    """As root: `function(*args)` in a child process that has dropped to uid/gid, for acting on something only
    that account vouched for (a rollback of its action). The result comes back as JSON (never pickle from a
    less-privileged process), at most CALL_AS_BYTES of it within `seconds` (the account owns the child and could
    stop it), else the child is killed; an exception in the child comes back as OSError with its message."""
    import json
    import select
    import signal
    import time

    from zenctl.core import seals

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            os.close(read_end)
            seals.forget()
            _drop(uid, gid)
            try:
                payload = {"ok": function(*args)}
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
                payload = {"error": getattr(exc, "strerror", None) or str(exc) or type(exc).__name__}
            with os.fdopen(write_end, "w") as out:
                json.dump(payload, out, default=str)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks, size, deadline = [], 0, time.monotonic() + seconds
    try:
        while size <= CALL_AS_BYTES:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                raise OSError(f"the process acting as uid {uid} did not finish within {seconds:g} s; killed")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        else:
            raise OSError(f"the process acting as uid {uid} answered more than {CALL_AS_BYTES >> 20} MiB; killed")
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.close(read_end)
        status = _reap(pid, deadline)
    try:
        payload = json.loads(b"".join(chunks))
    except ValueError:
        raise OSError(f"the process acting as uid {uid} died (status {status})") from None
    if not isinstance(payload, dict) or not ("ok" in payload or "error" in payload):
        raise OSError(f"the process acting as uid {uid} answered nonsense")
    if "error" in payload:
        raise OSError(str(payload["error"]))
    return payload["ok"]


def _reap(pid: int, deadline: float) -> int:
    """The child's wait status: waited for until the deadline (it may have closed its pipe, then been stopped by
    the account it runs as), then killed."""
    import signal
    import time

    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.01)
