"""`zenctl deps show PACKAGE`: what every python target has of one package, the newer versions its index offers
(with their update type and age), the advisories that affect the installed version, and the last proofs."""

import os
import sys
import time


def show(package: str, config: str | None, db: str | None, as_json: bool) -> int:
    from packaging.utils import canonicalize_name

    from zenctl.agents.dependency_manager import advisories as adv
    from zenctl.agents.dependency_manager import index as idx
    from zenctl.agents.dependency_manager import prove
    from zenctl.agents.dependency_manager import versions as ver
    from zenctl.agents.dependency_manager.agent import targets_of
    from zenctl.agents.dependency_manager.config import interpreter
    from zenctl.agents.dependency_manager.targets import TargetError, probe
    from zenctl.clikit import error, print_json
    from zenctl.core.config import load_config
    from zenctl.core.state import resolve_db_path
    from zenctl.core.untrusted import line
    from zenctl.errors import UsageError

    name = canonicalize_name(package)
    if not name or len(name) > 200 or not all(c.isalnum() or c in "-._" for c in name):
        raise UsageError(f"{line(package)[:80]!r} is not a distribution name")
    cfg = load_config(config).config.agents.dependency_manager
    state_path = resolve_db_path(db)
    targets, _ = targets_of(cfg)
    db_adv, adv_errors = adv.load_dir(cfg.advisories) if cfg.advisories else ({}, [])
    cache = _cached_index(state_path)
    report = []
    now = time.time()
    for tname, target in targets.items():
        if target.type != "python":
            continue
        entry: dict = {"target": tname}
        report.append(entry)
        try:
            facts, _ = probe(interpreter(target), index_url=target.index_url,
                             extra_index_urls=target.extra_index_urls)
        except TargetError as exc:
            entry["error"] = str(exc)
            continue
        dist = facts.dists.get(name)
        entry["installed"] = dist.version if dist else None
        outcome = idx.releases([name], [facts.index_url, *facts.extra_index_urls], facts.version, facts.tags,
                               cache=cache, now=now, ttl=cfg.cache_ttl, timeout=cfg.index_timeout, workers=2)
        if outcome.errors:
            entry["index_error"] = "; ".join(f"{u}: {e}" for u, e in outcome.errors.items())
        releases = outcome.releases.get(name, [])
        entry["versions"] = [
            {"version": r.version, "update_type": ver.update_type(dist.version, r.version) if dist else None,
             "age_days": round((now - r.uploaded) / 86400, 1) if r.uploaded else None}
            for r in releases if not dist or _newer(r.version, dist.version)]
        entry["advisories"] = [v.as_evidence() for v in adv.match(dist.version, db_adv.get(name, []))] if dist else []
        proofs = [r for r in prove.proofs_for(prove.store_for(state_path), name) if r.get("target") == tname]
        entry["proof"] = ({k: proofs[0].get(k) for k in ("ok", "changes", "failed_step", "started", "seconds",
                                                         "tail")} if proofs else None)
    if as_json:
        print_json({"package": name, "targets": report, "advisory_errors": adv_errors})
    else:
        sys.stdout.write(_text(name, report))
    for e in adv_errors[:3]:
        error(e)
    return 0 if any(e.get("installed") for e in report) else 1


def _newer(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return False


def _cached_index(state_path) -> dict:
    """The scan's index cache, read-only (a show never writes the state)."""
    import json
    import sqlite3

    if not os.path.exists(state_path):
        return {}
    try:
        conn = sqlite3.connect(f"file:{state_path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT value FROM agent_state WHERE agent = 'dependency_manager' AND "
                               "key = 'index_cache'").fetchone()
        finally:
            conn.close()
        return json.loads(row[0]) if row else {}
    except (sqlite3.Error, ValueError):
        return {}


def _text(name: str, report: list[dict]) -> str:
    from zenctl.core.untrusted import line

    out = []
    for e in report:
        head = f"{e['target']}: "
        if "error" in e:
            out.append(head + line(e["error"]))
            continue
        out.append(head + (f"{name} {e['installed']}" if e["installed"] else f"{name} not installed"))
        if e.get("index_error"):
            out.append(f"  index: {line(e['index_error'])}")
        if e["versions"]:
            out.append("  newer: " + ", ".join(
                f"{v['version']} ({v['update_type'] or '-'}" + (f", {v['age_days']} d old)" if v["age_days"] is not None
                                                              else ")") for v in e["versions"][-10:]))
        for a in e["advisories"]:
            out.append(f"  advisory {a['id']} ({', '.join(a['aliases'])}) severity {a['severity'] or 'unknown'}, "
                       f"fixed in {a['fixed'] or 'no release'}: {line(a['summary'])[:100]}")
        p = e.get("proof")
        if p:
            moved = ", ".join(f"{c.get('name')} {c.get('from')} -> {c.get('to')}" for c in p.get("changes") or [])
            out.append(f"  last proof {p.get('started')}: {moved}: " + ("passed" if p.get("ok") else
                                                                         f"FAILED at {p.get('failed_step')}"))
            for t in str(p.get("tail") or "").splitlines()[-15:]:
                out.append(f"    {line(t)}")
    return "\n".join(out) + "\n"
