"""An apt target's scan, the way unattended-upgrades sees the host: what `apt-get -s upgrade` would install (held
packages stay back, as apt keeps them), each candidate's origins from `apt-cache policy` (the Release file's
o= a= n= l= c= and the site), and security by the config's Origins-Pattern-like rules. It reads only: no
`apt-get update`, no lock (Debug::NoLocking for the simulation)."""

import os
import re
import subprocess
from fnmatch import fnmatchcase

from zenctl.core import untrusted
from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, Finding

TIMEOUT = 300
_INST = re.compile(r"^Inst (\S+) \[([^\]]+)\] \((\S+) ")
_FIELDS = {"o": "origin", "a": "archive", "n": "codename", "l": "label", "c": "component"}


class AptError(Exception):
    pass


def _run(argv: list[str]) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C", "LANG": "C"}
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise AptError(f"{argv[0]} not found: not a Debian-based host?") from None
    except subprocess.TimeoutExpired:
        raise AptError(f"{' '.join(argv[:3])} did not finish within {TIMEOUT}s") from None
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise AptError(f"{' '.join(argv[:3])}: {untrusted.line(last[0])[:200]}")
    return done.stdout.decode(errors="replace")


def upgradable() -> dict[str, tuple[str, str]]:
    """{package: (installed, candidate)} that `apt-get upgrade` would install now."""
    out = {}
    for line in _run(["apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"]).splitlines():
        m = _INST.match(line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def held() -> set[str]:
    try:
        return set(_run(["apt-mark", "showhold"]).split())
    except AptError:
        return set()


def held_upgrades(names: set[str]) -> dict[str, tuple[str, str]]:
    """Held packages whose candidate is newer (apt keeps them back: reported, never proposed)."""
    if not names:
        return {}
    out = {}
    for name, (installed, candidate, _) in policy(sorted(names)).items():
        if installed and candidate and installed != candidate and installed != "(none)":
            out[name] = (installed, candidate)
    return out


def sources() -> dict[str, dict]:
    """`apt-cache policy`'s package files: {"http://... bookworm-security/main amd64 Packages": {origin, archive,
    codename, label, component, site}}."""
    out: dict[str, dict] = {}
    current = None
    for line in _run(["apt-cache", "policy"]).splitlines():
        m = re.match(r"^ *-?\d+ (.+)$", line)
        if m and not line.strip().startswith(("release", "origin")):
            current = out.setdefault(m.group(1).strip(), {})
            continue
        stripped = line.strip()
        if current is None:
            continue
        if stripped.startswith("release "):
            for item in stripped[len("release "):].split(","):
                key, _, value = item.partition("=")
                if key in _FIELDS:
                    current[_FIELDS[key]] = value
        elif stripped.startswith("origin "):
            current["site"] = stripped[len("origin "):]
    return out


def policy(names: list[str]) -> dict[str, tuple[str, str, dict[str, list[str]]]]:
    """{package: (installed, candidate, {version: [source lines]})} from `apt-cache policy NAMES`."""
    out: dict[str, tuple[str, str, dict[str, list[str]]]] = {}
    for start in range(0, len(names), 200):
        text = _run(["apt-cache", "policy", "--", *names[start:start + 200]])
        name = installed = candidate = None
        table: dict[str, list[str]] = {}
        version = None
        for line in text.splitlines():
            if line and not line.startswith(" ") and line.endswith(":"):
                if name:
                    out[name] = (installed, candidate, table)
                name, installed, candidate, table, version = line[:-1], None, None, {}, None
            elif line.startswith("  Installed:"):
                installed = line.split(":", 1)[1].strip()
            elif line.startswith("  Candidate:"):
                candidate = line.split(":", 1)[1].strip()
            else:
                m = re.match(r"^ (?:\*\*\*|   ) (\S+) -?\d+$", line)
                if m:
                    version = m.group(1)
                    table[version] = []
                    continue
                m = re.match(r"^ {8}-?\d+ (.+)$", line)
                if m and version:
                    table[version].append(m.group(1).strip())
        if name:
            out[name] = (installed, candidate, table)
    return out


def matches(origin: dict, rule) -> bool:
    """Every key the rule gives matches (a glob) the origin's value."""
    given = {k: v for k, v in rule.model_dump().items() if v is not None}
    return bool(given) and all(fnmatchcase(origin.get(k) or "", v) for k, v in given.items())


def assess_apt(ctx, cfg, name: str, target, out: Assessment) -> None:
    head = f"deps:{name}"
    try:
        upgrades = upgradable()
        holds = held()
        wanted = {p: v for p, v in upgrades.items() if _watched(p, target)}
        kept = held_upgrades({h for h in holds if _watched(h, target)})
        files = sources()
        table = policy(sorted(set(wanted) | set(kept))) if wanted or kept else {}
    except AptError as exc:
        out.add(Finding(head, "unknown", f"target {name}: {exc}", evidence={"type": "apt"}))
        return
    findings, security_count = [], 0
    for package, (installed, candidate) in sorted({**wanted, **kept}.items()):
        origins = [dict(files.get(src, {}), source=src) for src in table.get(package, (None, None, {}))[2].get(
            candidate, []) if src in files]
        security = any(matches(o, rule) for o in origins for rule in target.security_origins)
        is_held = package in kept
        status = "critical" if security else cfg.outdated_status
        security_count += security
        what = "security update" if security else "update"
        shown = f"{untrusted.line(package)} {untrusted.line(installed)}"
        message = (f"{shown}: {what} {untrusted.line(candidate)} available from "
                   + (", ".join(untrusted.line(f"{o.get('origin', '?')}/{o.get('archive', '?')}") for o in origins)
                      or "an unknown origin")
                   + ("; held (apt-mark hold): not upgraded" if is_held else ""))
        evidence = {"installed": installed, "latest": candidate, "update_type": "security" if security else "upgrade",
                    "advisories": [], "origins": origins, "held": is_held, "security_origin": security}
        check = f"{head}:{package}"
        findings.append(Finding(check, status, message, evidence=evidence, security=security))
        if security and not is_held:
            change = {"name": package, "from": installed, "to": candidate, "security": True,
                      "origin": origins[0] if origins else {}}
            out.proposals.append(Proposal(
                "deps.apt_upgrade", f"{name}:{package}",
                {"target": name, "type": "apt", "changes": [change], "group": None, "advisories": []},
                untrusted.line(f"{package} {installed} -> {candidate}: security update"), check))
    out.add(Finding(head, "ok", f"target {name}: {len(wanted) + len(kept)} Debian packages upgradable, "
                                f"{security_count} from a security origin, {len(kept)} held",
                    evidence={"type": "apt", "upgradable": len(wanted) + len(kept), "security": security_count,
                              "held": sorted(kept)}))
    for f in findings:
        out.add(f)


def _watched(package: str, target) -> bool:
    base = package.split(":")[0]
    return any(fnmatchcase(base, g) for g in target.packages) and not any(fnmatchcase(base, g)
                                                                          for g in target.exclude)
