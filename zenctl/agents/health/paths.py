"""Paths kept in shape (`agents.system_health.paths`): observe with lstat (never following a symlink), judge
against the wanted type, mode and owner, and propose fs.mkdir, fs.touch, fs.chmod or fs.chown."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zenctl.core.actions import Proposal
from zenctl.core.agent import Finding

if TYPE_CHECKING:  # the models (pydantic) are not imported on the cron path: see core.configcache
    from zenctl.agents.health.config import PathSpec


@dataclass
class PathFacts:
    """What is at a configured path now, and the ids its owner/group names resolve to."""

    path: str
    kind: str  # missing | directory | file | symlink | other
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    inode: int | None = None
    want_uid: int = -1
    want_gid: int = -1
    error: str | None = None  # an owner or group that does not exist


def observe(spec: PathSpec) -> PathFacts:
    facts = PathFacts(spec.path, "missing")
    try:
        facts.want_uid = _resolve(spec.owner, pwd.getpwnam, "user")
        facts.want_gid = _resolve(spec.group, grp.getgrnam, "group")
    except LookupError as exc:
        facts.error = str(exc)
    try:
        st = os.lstat(spec.path)
    except FileNotFoundError:
        return facts
    except OSError as exc:
        facts.kind, facts.error = "other", f"cannot stat: {exc.strerror}"
        return facts
    facts.kind = ("symlink" if stat.S_ISLNK(st.st_mode) else "directory" if stat.S_ISDIR(st.st_mode)
                  else "file" if stat.S_ISREG(st.st_mode) else "other")
    facts.mode, facts.uid, facts.gid, facts.inode = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_ino
    return facts


def _resolve(name: str | None, lookup, what: str) -> int:
    if name is None:
        return -1
    if name.isdigit():
        return int(name)
    try:
        entry = lookup(name)
    except KeyError:
        raise LookupError(f"{what} {name!r} does not exist") from None
    return entry.pw_uid if what == "user" else entry.gr_gid


def judge(spec: PathSpec, facts: PathFacts) -> tuple[Finding, list[Proposal]]:
    """The finding for one path and the actions that would repair it."""
    check = f"path:{spec.path}"
    want_mode = int(spec.mode, 8) if spec.mode else None
    evidence = {"path": spec.path, "kind": facts.kind, "ensure": spec.ensure,
                "mode": f"{facts.mode:04o}" if facts.mode is not None else None, "uid": facts.uid, "gid": facts.gid}
    if facts.error:
        return Finding(check, "unknown", f"{spec.path}: {facts.error}", facts.kind, None, "", evidence), []
    if facts.kind == "missing":
        kind = "fs.mkdir" if spec.ensure == "directory" else "fs.touch"
        params = {"path": spec.path, "mode": want_mode, "uid": facts.want_uid, "gid": facts.want_gid}
        return (Finding(check, "warning", f"{spec.path}: {spec.ensure} is missing", "missing", None, "", evidence),
                [Proposal(kind, spec.path, params, f"{spec.path}: {spec.ensure} is missing", check)])
    if facts.kind != spec.ensure:
        what = "a symlink (not followed, not changed)" if facts.kind == "symlink" else f"a {facts.kind}"
        return Finding(check, "critical", f"{spec.path}: is {what}, expected a {spec.ensure}; needs a person",
                       facts.kind, None, "", evidence), []
    problems, proposals = [], []
    if want_mode is not None and facts.mode != want_mode:
        problems.append(f"mode {facts.mode:04o}, want {want_mode:04o}")
        proposals.append(Proposal("fs.chmod", spec.path, {"path": spec.path, "mode": want_mode,
                                                          "from_mode": facts.mode, "inode": facts.inode},
                                  f"{spec.path}: mode is {facts.mode:04o}, want {want_mode:04o}", check))
    wrong_uid = facts.want_uid >= 0 and facts.uid != facts.want_uid
    wrong_gid = facts.want_gid >= 0 and facts.gid != facts.want_gid
    if wrong_uid or wrong_gid:
        have, want = f"{facts.uid}:{facts.gid}", f"{facts.want_uid if wrong_uid else facts.uid}:" \
                                                 f"{facts.want_gid if wrong_gid else facts.gid}"
        problems.append(f"owner {have}, want {want}")
        proposals.append(Proposal("fs.chown", spec.path, {
            "path": spec.path, "uid": facts.want_uid if wrong_uid else -1, "gid": facts.want_gid if wrong_gid else -1,
            "from_uid": facts.uid, "from_gid": facts.gid, "inode": facts.inode},
            f"{spec.path}: owner is {have}, want {want}", check))
    if problems:
        return Finding(check, "warning", f"{spec.path}: {'; '.join(problems)}", facts.kind, None, "", evidence), proposals
    return Finding(check, "ok", f"{spec.path}: {facts.kind}, mode {facts.mode:04o}, owner {facts.uid}:{facts.gid}",
                   facts.kind, None, "", evidence), []
