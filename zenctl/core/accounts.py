"""Service accounts (the seed's least privilege): an agent with `run_as` runs as that user, never as root.

Root resolves the account, shares the state with its group (see `sharing`), and drops to it (supplementary
groups cleared, then gid, then uid, so there is no way back) before the agent observes anything. Every path the
run needs (config, state) is resolved before the drop, so the account's own $HOME does not change them.
"""

import os
import pwd
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


def switch_to(account: Account, state_path: Path) -> None:
    """As root: share the state with the account's group, then become the account for good."""
    from zenctl.core import sharing

    sharing.share(state_path, account.gid)
    os.setgroups([])
    os.setgid(account.gid)
    os.setuid(account.uid)
    os.environ.update(HOME=account.home, USER=account.user, LOGNAME=account.user)
    os.umask(0o007)
