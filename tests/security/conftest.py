"""Attacks run for real: a second user created by the test acts against root's zenctl.

Every test here needs root (to create users, mount file systems, drop privileges). Outside CI a non-root run skips
them with that reason; with CI=true they never skip.
"""

import os
import pwd
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                               reason="the attacks need root: a second user, mounts, dropped privileges")


def make_user(groups: list[str] | None = None) -> pwd.struct_passwd:
    """A throwaway system user with a group of its own (and `groups` as supplementary groups)."""
    assert os.geteuid() == 0, "CI=true: the security tests must run as root"
    name = f"zx{secrets.token_hex(4)}"
    argv = ["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin"]
    if groups:
        argv += ["--groups", ",".join(groups)]
    subprocess.run([*argv, name], check=True)
    return pwd.getpwnam(name)


def drop_user(entry: pwd.struct_passwd) -> None:
    subprocess.run(["pkill", "-KILL", "-u", str(entry.pw_uid)], check=False)
    subprocess.run(["userdel", entry.pw_name], check=False)


@pytest.fixture
def intruder() -> Iterator[pwd.struct_passwd]:
    """A local user with no privileges: the attacker of the file-system findings."""
    entry = make_user()
    try:
        yield entry
    finally:
        drop_user(entry)


def as_user(entry: pwd.struct_passwd, argv: list[str], groups: list[int] | None = None,
            **kw) -> subprocess.CompletedProcess:
    """Run `argv` as `entry` (its own group, plus `groups`), capturing text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    kw.setdefault("env", {"PATH": "/usr/bin:/bin", "HOME": "/"})
    return subprocess.run(argv, user=entry.pw_uid, group=entry.pw_gid, extra_groups=groups or [], **kw)


def as_user_python(entry: pwd.struct_passwd, code: str, groups: list[int] | None = None,
                   **kw) -> subprocess.CompletedProcess:
    """Run Python `code` as `entry` with the system interpreter (reachable by any user, unlike a pyenv under /root)."""
    return as_user(entry, ["/usr/bin/python3", "-c", code], groups=groups, **kw)


@contextmanager
def tmpfs_with_tmp(size: str, prefix: str) -> Iterator[Path]:
    """A fresh tmpfs of `size` (0755, reachable by any user) holding `tmp/` (1777, a root to clean), unmounted
    and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(base)], check=True)
    try:
        (base / "tmp").mkdir()
        (base / "tmp").chmod(0o1777)
        yield base
    finally:
        subprocess.run(["umount", "-l", str(base)], check=False)
        base.rmdir()
