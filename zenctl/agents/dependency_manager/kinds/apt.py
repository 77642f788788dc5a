"""Debian package upgrades, the way unattended-upgrades applies them, and their undo.

`deps.apt_upgrade` runs `apt-get install --only-upgrade -y PKG=VERSION` (argv, DEBIAN_FRONTEND=noninteractive,
the configuration files kept as they are, nothing removed, held packages never touched) from the package lists
apt already has (it never runs `apt-get update`). It records the previous version of every package that moved.
`zenctl rollback ID` is `deps.apt_restore`: `apt-get install --allow-downgrades PKG=PREVIOUS` when the archive
still offers that version (`apt-cache madison`); when it does not, rollback says so and names the .deb in apt's
cache if one is left there.

Parameters: package, to, from (deps.apt_upgrade); packages {name: version}, undo (deps.apt_restore).
"""

import glob
import os
import re

from zenctl.agents.dependency_manager.prove import Ran, clean_env, run
from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.untrusted import line

APT_TIMEOUT = 1800.0  # seconds for one apt-get install (a kernel's postinst can take minutes)
QUERY_TIMEOUT = 120.0
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,100}(:[a-z0-9-]{1,20})?$")  # Debian policy 5.6.1, optional :arch
_VERSION = re.compile(r"^[0-9][A-Za-z0-9.+~:-]{0,100}$")  # Debian policy 5.6.12 (epoch:upstream-revision)
ARCHIVES = "/var/cache/apt/archives"


def valid_package(name: object) -> str:
    if not isinstance(name, str) or not _PACKAGE.fullmatch(name):
        raise ActionFailed(f"not a Debian package name: {line(repr(name))[:120]}; nothing changed")
    return name


def valid_version(version: object) -> str:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ActionFailed(f"not a Debian version: {line(repr(version))[:120]}; nothing changed")
    return version


def _env() -> dict[str, str]:
    return clean_env({"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none",
                      "NEEDRESTART_MODE": "l", "LC_ALL": "C.UTF-8"})


def _output(argv: list[str]) -> str:
    """The whole output of a query (dpkg-query, apt-mark, apt-cache), which `run` keeps only the tail of."""
    import subprocess

    try:
        done = subprocess.run(argv, capture_output=True, timeout=QUERY_TIMEOUT, env=_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ActionFailed(f"{argv[0]} could not run: {exc}") from None
    if done.returncode not in (0, 1):
        raise ActionFailed(f"{' '.join(argv[:2])} exited {done.returncode}: "
                           f"{line(done.stderr.decode(errors='replace').strip()[-300:])}")
    return done.stdout.decode(errors="replace")


def installed() -> dict[str, str]:
    """Every installed package (status `ii`, or half-done ones) -> its version."""
    out = _output(["dpkg-query", "-W", "-f=${binary:Package}\t${Version}\t${db:Status-Abbrev}\n"])
    found = {}
    for row in out.splitlines():
        parts = row.split("\t")
        if len(parts) == 3 and parts[2].strip() and parts[2][1] not in ("n", "c"):
            found[parts[0].split(":")[0] if parts[0].endswith(f":{_arch()}") else parts[0]] = parts[1]
    return found


def _arch() -> str:
    global _ARCH
    if not _ARCH:
        _ARCH = _output(["dpkg", "--print-architecture"]).strip() or "?"
    return _ARCH


_ARCH = ""


def held() -> set[str]:
    return {name.split(":")[0] for name in _output(["apt-mark", "showhold"]).split()}


def available(package: str) -> list[str]:
    """The versions of `package` the archive (apt's lists) still offers."""
    versions = []
    for row in _output(["apt-cache", "madison", package]).splitlines():
        parts = [p.strip() for p in row.split("|")]
        if len(parts) >= 3 and parts[0] == package.split(":")[0]:
            versions.append(parts[1])
    return list(dict.fromkeys(versions))


def _cached_deb(package: str, version: str) -> str | None:
    pattern = f"{glob.escape(package.split(':')[0])}_{glob.escape(version.replace(':', '%3a'))}_*.deb"
    found = sorted(glob.glob(os.path.join(ARCHIVES, pattern)))
    return found[0] if found else None


def _apt_get(args: list[str]) -> Ran:
    argv = ["apt-get", "install", "-y", "-q", "--no-remove", "-o", "DPkg::Lock::Timeout=120",
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", *args]
    return run(argv, APT_TIMEOUT, env=_env())


def _moved(before: dict[str, str], after: dict[str, str]) -> dict[str, list]:
    return {name: [before.get(name), after.get(name)] for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)}


def _fail(ran: Ran, what: str) -> ActionFailed:
    tail = [t for t in ran.tail.strip().splitlines() if t.strip()]
    errors = [t for t in tail if t.startswith("E:")] or tail[-1:] or ["no output"]
    how = "timed out" if ran.code is None else f"exited {ran.code}"
    return ActionFailed(f"{what} {how}: {line(errors[0])[:300]}")


def _upgrades(proposal: Proposal) -> list[tuple[str, str, str | None]]:
    """(package, version, expected installed version) from `changes` [{name, from, to}] (what the agent emits),
    or from `package`, `to`, `from`; every name and version checked before it reaches an argv."""
    p = proposal.params
    items = p.get("changes") if p.get("changes") is not None else [
        {"name": p.get("package"), "to": p.get("to"), "from": p.get("from")}]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ActionFailed("no packages to upgrade (params.changes lists name, from, to); nothing changed")
    out = [(valid_package(i.get("name")), valid_version(i.get("to")),
            None if i.get("from") is None else valid_version(i.get("from"))) for i in items]
    if len({n for n, _, _ in out}) != len(out):
        raise ActionFailed("a package appears twice in the changes; nothing changed")
    return out


def _undo(action: dict, check: bool) -> Proposal | str:
    """The `deps.apt_restore` that puts the previous versions back, or why it cannot."""
    try:
        return _undo_proposal(action, check)
    except ActionFailed as exc:  # dpkg-query or apt-cache could not run
        return f"not rolling back {action['id']} ({action['kind']} {action['target']}): {exc}"


def _undo_proposal(action: dict, check: bool) -> Proposal | str:
    moved = (action.get("before") or {}).get("moved")
    what = f"{action['id']} ({action['kind']} {action['target']})"
    if not isinstance(moved, dict) or not moved:
        return f"action {what} recorded no package it changed; nothing to undo"
    wanted = {name: old for name, (old, _new) in moved.items() if old}
    added = sorted(name for name, (old, _new) in moved.items() if not old)
    if check:
        now = installed()
        changed = [f"{name} is {now.get(name) or 'not installed'}" for name, (_old, new) in moved.items()
                   if new and now.get(name) != new]
        if changed:
            return f"not rolling back {what}: {changed[0]} now, not what the action left (changed since)"
        missing = [(name, version) for name, version in wanted.items() if version not in available(name)]
        if missing:
            notes = []
            for name, version in missing:
                deb = _cached_deb(name, version)
                notes.append(f"{name} {version} is no longer in the archive (apt-cache madison {name} lists "
                             f"{', '.join(available(name)) or 'nothing'})"
                             + (f"; its .deb is still in apt's cache: dpkg -i {deb}" if deb else
                                "; find its .deb (snapshot.debian.org) and install it with dpkg -i"))
            return f"not rolling back {what}: " + "; ".join(notes)
    if not wanted:
        return f"not rolling back {what}: it only added packages ({', '.join(added)}); remove them by hand"
    return Proposal("deps.apt_restore", action["target"], {"undo": action["id"], "packages": wanted,
                                                           "left": {n: new for n, (_o, new) in moved.items()},
                                                           "added": added},
                    f"rollback of {action['id']} ({action['kind']} {action['target']}, {action.get('finished')})",
                    f"rollback:{action['id']}")


@register
class AptUpgrade(ActionKind):
    name = "deps.apt_upgrade"
    summary = "Upgrade one Debian package to the given version (apt-get install --only-upgrade), held ones never."
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        try:
            pins = ", ".join(f"{n}={v} (from {f or 'the installed version'})" for n, v, f in _upgrades(proposal))
        except ActionFailed as exc:
            return f"apt upgrade in {line(proposal.target)}: refused: {exc}"
        return (f"apt-get install --only-upgrade {pins} (noninteractive, configuration files kept, nothing removed, "
                "held packages never touched); rollback installs the previous version if the archive still has it")

    def apply(self, proposal: Proposal) -> Applied:
        upgrades = _upgrades(proposal)
        on_hold = sorted({n.split(":")[0] for n, _, _ in upgrades} & held())
        if on_hold:
            raise ActionFailed(f"{', '.join(on_hold)} held (apt-mark showhold); not touched")
        before = installed()
        for package, version, expected in upgrades:
            current = before.get(package)
            if current is None:
                raise ActionFailed(f"{package} is not installed; nothing changed")
            if current == version:
                raise ActionFailed(f"{package} is already {version}; nothing changed")
            if expected and current != expected:
                raise ActionFailed(f"{package} is {current} now, not {expected}: the scan is out of date; "
                                   "nothing changed")
        pins = [f"{n}={v}" for n, v, _ in upgrades]
        ran = _apt_get(["--only-upgrade", *pins])
        moved = _moved(before, installed())
        if not ran.ok:
            failure = _fail(ran, f"apt-get install --only-upgrade {' '.join(pins)}")
            if not moved:
                raise ActionFailed(f"{failure}; nothing changed")
            raise ActionFailed(f"{failure}; it changed {len(moved)} package(s) all the same: " + ", ".join(
                f"{n} {o or '(new)'} -> {v or '(removed)'}" for n, (o, v) in list(moved.items())[:5]))
        shown = ", ".join(f"{n} {o or '(new)'} -> {v or '(removed)'}" for n, (o, v) in moved.items())
        return Applied(f"upgraded {shown or 'nothing'}", {"moved": moved})

    def verify(self, proposal: Proposal) -> str | None:
        now = installed()
        wrong = [f"{n} is {now.get(n) or 'not installed'}, not {v}" for n, v, _ in _upgrades(proposal)
                 if now.get(n) != v]
        return "; ".join(wrong) or None

    def undo(self, action: dict, check: bool = True) -> Proposal | str:
        return _undo(action, check)


@register
class AptRestore(ActionKind):
    name = "deps.apt_restore"
    summary = "Put Debian packages back to their previous versions (rollback of deps.apt_upgrade)."
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        packages = p.get("packages") if isinstance(p.get("packages"), dict) else {}
        left = p.get("left") if isinstance(p.get("left"), dict) else {}
        moves = ", ".join(f"{n} {left.get(n) or '?'} -> {v}" for n, v in sorted(packages.items()))
        added = p.get("added") or []
        undo = f"undo {line(str(p.get('undo')))}: " if p.get("undo") else ""
        return (f"{undo}apt-get install --allow-downgrades {line(moves)} (noninteractive, nothing removed)"
                + (f"; left installed (added by the upgrade): {line(', '.join(map(str, added)))}" if added else ""))

    def _packages(self, proposal: Proposal) -> dict[str, str]:
        packages = proposal.params.get("packages")
        if not isinstance(packages, dict) or not packages:
            raise ActionFailed("no packages to put back")
        return {valid_package(n): valid_version(v) for n, v in packages.items()}

    def apply(self, proposal: Proposal) -> Applied:
        packages = self._packages(proposal)
        on_hold = sorted(set(p.split(":")[0] for p in packages) & held())
        if on_hold:
            raise ActionFailed(f"{', '.join(on_hold)} held (apt-mark showhold); not touched")
        before = installed()
        ran = _apt_get(["--allow-downgrades", *(f"{n}={v}" for n, v in sorted(packages.items()))])
        moved = _moved(before, installed())
        if not ran.ok:
            raise _fail(ran, "apt-get install --allow-downgrades")
        shown = ", ".join(f"{n} {o or '(new)'} -> {v or '(removed)'}" for n, (o, v) in moved.items())
        return Applied(f"put back {shown or 'nothing (already as recorded)'}", {"moved": moved})

    def verify(self, proposal: Proposal) -> str | None:
        now = installed()
        wrong = [f"{n} is {now.get(n) or 'not installed'}, not {v}" for n, v in self._packages(proposal).items()
                 if now.get(n) != v]
        return "; ".join(wrong) or None

    def undo(self, action: dict, check: bool = True) -> Proposal | str:
        return _undo(action, check)
