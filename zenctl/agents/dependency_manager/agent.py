"""The Dependency Management agent: for each target, the installed packages against the index and the known
advisories; findings `deps:<target>:<package>` and upgrade proposals by update type (the kinds' policy modes are
the seed's security_updates / minor_updates / major_updates). It changes nothing: the kinds do, through the
runtime."""

import json
import os
import sys
import time

from packaging.version import InvalidVersion, Version

from zenctl.agents.dependency_manager import advisories as adv
from zenctl.agents.dependency_manager import index as idx
from zenctl.agents.dependency_manager import versions as ver
from zenctl.agents.dependency_manager.config import DependencyManagerConfig, PythonTarget, interpreter
from zenctl.agents.dependency_manager.targets import TargetError, probe, read_requirements
from zenctl.core import untrusted
from zenctl.core.actions import Proposal
from zenctl.core.agent import Assessment, BaseAgent, Finding, RunContext

SELF = "self"  # the target name when none is configured: the interpreter zenctl runs in
MAX_LISTED = 5


def proof_index(state_path, target: str) -> dict[str, list[dict]]:
    """The proof records (deps-apply's kinds write them beside the state, prove.store_for) of `target` by package,
    newest first."""
    if not os.path.isdir(f"{state_path}.deps"):  # prove.store_for, without importing the kinds' module
        return {}
    from zenctl.agents.dependency_manager import prove

    out: dict[str, list[dict]] = {}
    for record in prove.records(prove.store_for(state_path)):
        if record.get("target") != target:
            continue
        for change in record.get("changes") or []:
            if isinstance(change, dict) and isinstance(change.get("name"), str):
                out.setdefault(_canon(change["name"]), []).append(record)
    return out


def targets_of(cfg: DependencyManagerConfig) -> tuple[dict, bool]:
    """The configured targets, or the interpreter zenctl runs in (and True: say so)."""
    if cfg.targets:
        return dict(cfg.targets), False
    return {SELF: PythonTarget(python=sys.executable)}, True


class DependencyManagerAgent(BaseAgent):
    name = "dependency_manager"
    title = "Dependency Management"

    def __init__(self, only: str | None = None):
        self.only = only  # --target NAME

    def assess(self, ctx: RunContext) -> Assessment:
        cfg = ctx.config  # the validated section, read as a view (core.configcache)
        out = Assessment()
        targets, implicit = targets_of(cfg)
        if self.only is not None:
            targets = {k: v for k, v in targets.items() if k == self.only}
        errors: list[str] = []

        def advisories_for(names: set[str]) -> dict[str, list[adv.Advisory]]:
            """The offline advisories of these packages (only their folders are read), malformed files noted."""
            if not cfg.advisories:
                return {}
            db, bad = adv.load_dir(cfg.advisories, packages=names)
            errors.extend(e for e in bad if e not in errors)
            return db

        for name, target in targets.items():
            if target.type == "apt":
                from zenctl.agents.dependency_manager.aptscan import assess_apt

                assess_apt(ctx, cfg, name, target, out)
            else:
                PythonScan(ctx, cfg, name, target, advisories_for, implicit).run(out)
        if errors:
            out.findings.insert(0, Finding(
                "deps:advisories", "warning",
                f"{len(errors)} advisory file(s) could not be used (the rest were): {errors[0]}",
                evidence={"errors": errors[:100], "directory": cfg.advisories}))
        return out


class PythonScan:
    """One python target's scan."""

    def __init__(self, ctx: RunContext, cfg: DependencyManagerConfig, name: str, target: PythonTarget,
                 advisories_for, implicit: bool):
        self.ctx, self.cfg, self.name, self.target, self.implicit = ctx, cfg, name, target, implicit
        self.advisories_for = advisories_for

    def run(self, out: Assessment) -> None:
        ctx, cfg, name, target = self.ctx, self.cfg, self.name, self.target
        head = f"deps:{name}"
        probes = ctx.recall("probe_cache", {}) or {}
        from zenctl.agents.dependency_manager.targets import interpreter_key

        try:
            key = interpreter_key(os.path.abspath(os.path.expanduser(interpreter(target))))
        except OSError:
            key = ""
        cached = probes.get(key) if key else None
        if cached and ctx.now - cached.get("at", 0) >= cfg.cache_ttl:
            cached = None
        try:
            facts, slow = probe(interpreter(target), index_url=target.index_url,
                                extra_index_urls=target.extra_index_urls, cached=cached)
        except TargetError as exc:
            out.add(Finding(head, "unknown", f"target {name}: {exc}", evidence={"python": interpreter(target)}))
            return
        if key and (cached is None or any(slow.get(k) != cached.get(k) for k in slow)):  # only what is new
            probes = {k: v for k, v in probes.items() if ctx.now - v.get("at", 0) < cfg.cache_ttl}
            keep = {k: v for k, v in slow.items() if k != "pip_config" or "@" not in json.dumps(v)}  # no secrets
            probes[key] = {**keep, "at": cached.get("at", ctx.now) if cached else ctx.now}
            ctx.remember("probe_cache", dict(list(probes.items())[-50:]))
        can_act = True
        pins: list = []
        direct: set[str] = set()
        for kind, files in (("requirements", target.requirements), ("constraints", target.constraints)):
            for path in files:
                try:
                    reqs, cons = read_requirements(path)
                except ValueError as exc:
                    out.add(Finding(f"{head}:{kind}", "unknown", f"target {name}: {exc}; no upgrade proposed",
                                    evidence={"file": path}))
                    can_act = False
                    continue
                pins += reqs + cons
                if kind == "requirements":
                    direct |= {_canon(p.requirement.name) for p in reqs}
        needs = ver.requirers(facts.dists, facts.markers)
        for pin in pins:
            needs.setdefault(_canon(pin.requirement.name), []).append(
                ver.Requirer(pin.where, "", pin.requirement.specifier, str(pin.requirement)))
        if not target.requirements:  # no requirements files: what nothing else requires is direct (pipdeptree)
            direct = {n for n in facts.dists if n not in needs}
        indexes = [facts.index_url, *facts.extra_index_urls]
        cache = ctx.recall("index_cache", {}) or {}
        started = time.monotonic()
        outcome = idx.releases(sorted(facts.dists), indexes, facts.version, facts.tags, cache=cache, now=ctx.now,
                               ttl=cfg.cache_ttl, timeout=cfg.index_timeout, workers=cfg.index_workers)
        if outcome.fetched:
            ctx.remember("index_cache", cache)
        for url, why in outcome.errors.items():
            out.add(Finding(f"{head}:index", "unknown", f"target {name}: index {url}: {why}; nothing proposed",
                            evidence={"index": url, "error": why}))
            can_act = False
        vulns, online_error = self.vulnerabilities(facts)
        if online_error:
            out.add(Finding(f"{head}:advisories", "unknown", f"target {name}: {online_error}",
                            evidence={"service": self.service()}))
        broken = ver.broken(facts.dists, needs)
        self.proofs = proof_index(ctx.state.path, name)
        counts = {"outdated": 0, "vulnerable": 0, "broken": 0}
        buckets: dict[tuple[str, str], dict] = {}
        findings = []
        for dist_name, dist in sorted(facts.dists.items()):
            finding, changes = self.judge(dist, outcome, vulns.get(dist_name, []), needs, broken, direct, can_act)
            findings.append(finding)
            for kind, change, advisories in changes:
                group = ver.group_of(dist_name, cfg.groups) if cfg.groups else None
                bucket = buckets.setdefault((kind, group or f"pkg:{dist_name}"), {
                    "check": finding.check, "group": group, "changes": [], "advisories": []})
                bucket["changes"].append(change)
                bucket["advisories"] += advisories
            counts["outdated"] += bool(finding.evidence.get("latest"))
            counts["vulnerable"] += bool(finding.security)
            counts["broken"] += bool(finding.evidence.get("broken"))
        summary = (f"target {name}: {len(facts.dists)} packages, {counts['outdated']} outdated, "
                   f"{counts['vulnerable']} vulnerable, {counts['broken']} with unmet requirements "
                   f"(Python {facts.version} at {untrusted.name(facts.python)}, index {idx.shown_url(facts.index_url)})")
        if self.implicit:
            summary += ("; no targets configured: scanned the interpreter zenctl runs in (reported only: zenctl "
                        "never upgrades its own environment on its own; configure it as a target to allow that)")
        out.add(Finding(head, "ok", summary, evidence={
            "python": facts.python, "python_version": facts.version, "index_url": idx.shown_url(facts.index_url),
            "extra_index_urls": [idx.shown_url(u) for u in facts.extra_index_urls], "packages": len(facts.dists),
            **counts, "missing_from_index": outcome.missing[:200], "fetched": outcome.fetched,
            "index_seconds": round(time.monotonic() - started, 3), "implicit": self.implicit,
            "unreadable_metadata": facts.problems[:20]}))
        if facts.problems:
            out.add(Finding(f"{head}:metadata", "warning", f"target {name}: {len(facts.problems)} installed "
                            f"distribution(s) skipped: {facts.problems[0]}", evidence={"problems": facts.problems[:50]}))
        for finding in findings:
            out.add(finding)
        if self.implicit:
            return  # an upgrade of the environment this very process runs from is no one's explicit choice
        for (kind, _), bucket in buckets.items():
            out.proposals.append(self.proposal(kind, bucket, facts))

    def service(self) -> str:
        cfg = self.cfg
        if cfg.advisory_service == "auto":
            return "off" if cfg.advisories else "osv"
        return cfg.advisory_service

    def vulnerabilities(self, facts) -> tuple[dict[str, list[tuple[adv.Vulnerability, object]]], str | None]:
        """{package: [(vulnerability, affects(version) -> bool)]} from the offline directory and the service."""
        out: dict[str, list] = {}
        db = self.advisories_for(set(facts.dists))
        for name, dist in facts.dists.items():
            advisories = db.get(name)
            if advisories:
                for v in adv.match(dist.version, advisories):
                    ids = {v.id, *v.aliases}
                    members = [a for a in advisories if a.id in ids]
                    out.setdefault(name, []).append((v, _affects_any(members)))
        service = self.service()
        if service == "off":
            return out, None
        cache = self.ctx.recall("advisory_cache", {}) or {}
        found, error = adv.query_service(service, {n: d.version for n, d in facts.dists.items()},
                                         timeout=self.cfg.index_timeout, workers=self.cfg.index_workers,
                                         cache=cache, now=self.ctx.now, ttl=self.cfg.cache_ttl,
                                         osv_url=self.cfg.osv_url)
        self.ctx.remember("advisory_cache", {k: v for k, v in cache.items() if self.ctx.now - v[0] < self.cfg.cache_ttl})
        for name, vulns in found.items():
            known = {i for v, _ in out.get(name, []) for i in (v.id, *v.aliases)}
            for v in vulns:
                if not ({v.id, *v.aliases} & known):
                    out.setdefault(name, []).append((v, _below(v.fixed)))
        return out, (f"advisory service {service}: {error}" if error else None)

    def judge(self, dist, outcome, vulns, needs, broken, direct, can_act):
        """The finding of one package and its changes [(kind, change, advisories)]."""
        cfg, name = self.cfg, self.name
        check = f"deps:{name}:{dist.name}"
        shown = f"{untrusted.line(dist.display)} {untrusted.line(dist.version)}"
        releases = outcome.releases.get(dist.name, [])
        gate = adv.LEVELS.index(cfg.security_min_severity)
        security = [(v, f) for v, f in vulns if v.severity is None or adv.LEVELS.index(v.severity) >= gate]
        minor_vulns = [v for v, f in vulns if (v, f) not in security]
        keep = [k for k in needs.get(dist.name, []) if k.parent != dist.name]
        affected = (lambda version: any(f(version) for _, f in security)) if security else None
        try:
            p = ver.plan(dist.version, releases, keep, now=self.ctx.now, min_age=cfg.min_release_age,
                         affected=affected)
        except InvalidVersion:
            p = ver.Plan(None, None, None, None, None, None, None)
        proofs = self.proofs.get(dist.name, [])
        proof = proofs[0] if proofs else None
        advisories = [v.as_evidence() for v, _ in vulns]
        evidence = {
            "installed": dist.version, "latest": p.latest,
            "update_type": ver.update_type(dist.version, p.latest) if p.latest else None,
            "advisories": advisories, "candidate": p.non_major, "major": p.major, "fix": p.fix,
            "direct": dist.name in direct, "cooling": p.cooling, "blocked_by": p.blocked_by,
            "broken": broken.get(dist.name, []), "on_index": dist.name not in outcome.missing,
        }
        if proof:
            to = next((c.get("to") for c in proof.get("changes") or [] if _canon(str(c.get("name"))) == dist.name),
                      None)
            evidence["proof"] = {"ok": proof.get("ok"), "to": to, "started": proof.get("started"),
                                 "failed_step": proof.get("failed_step"), "tail": str(proof.get("tail") or "")[-2000:]}
        parts: list[str] = []
        changes: list[tuple[str, dict, list]] = []
        status = "ok"

        def failed_proof(to: str) -> bool:
            """A candidate whose proof failed is not tried again until a newer version appears."""
            return any(not r.get("ok") and any(_canon(str(c.get("name"))) == dist.name and c.get("to") == to
                                               for c in r.get("changes") or []) for r in proofs)

        def change(to: str, kind_type: str, is_security: bool) -> dict:
            return {"name": dist.name, "from": dist.version, "to": to, "update_type": kind_type,
                    "security": is_security}

        if security:
            status = "critical"
            ids = ", ".join(v.id for v, _ in security[:MAX_LISTED])
            if p.fix:
                parts.append(f"vulnerable ({ids}); fixed in {p.fix} ({p.fix_type})")
                if can_act and not failed_proof(p.fix):
                    kind = "deps.upgrade_major" if p.fix_type == "major" else "deps.upgrade_security"
                    changes.append((kind, change(p.fix, p.fix_type, True),
                                    [{**v.as_evidence(), "package": dist.name} for v, _ in security]))
            elif p.blocked_by:
                parts.append(f"vulnerable ({ids}); the fix is blocked: {p.blocked_by[0]}: upgrade "
                             f"{p.blocked_by[0].split()[0]} first")
            else:
                fixed = sorted({v.fixed for v, _ in security if v.fixed}, key=_vkey)
                parts.append(f"vulnerable ({ids}); " + (f"fixed in {fixed[-1]}, not on the index"
                                                        if fixed else "no fixed version known"))
        if minor_vulns:
            status = _worse(status, "warning")
            parts.append(f"advisories below security_min_severity {cfg.security_min_severity}: "
                         + ", ".join(v.id for v in minor_vulns[:MAX_LISTED]))
        if p.latest:
            status = _worse(status, cfg.outdated_status)
            parts.append(f"{p.latest} available ({evidence['update_type']})")
            fix_to = p.fix if security else None
            if p.non_major and p.non_major != fix_to and can_act and not failed_proof(p.non_major):
                t = ver.update_type(dist.version, p.non_major)
                changes.append((f"deps.upgrade_{t}", change(p.non_major, t, False), []))
            if p.major and p.major != fix_to and can_act and not failed_proof(p.major):
                changes.append(("deps.upgrade_major", change(p.major, "major", False), []))
            if p.cooling:
                parts.append(f"{', '.join(p.cooling[-3:])} younger than min_release_age")
        if proof and not proof.get("ok"):
            parts.append(f"the proof of {evidence['proof']['to']} failed ({proof.get('failed_step') or 'a step'}); "
                         "not retried until a newer version appears")
        if broken.get(dist.name):
            status = _worse(status, "warning")
            parts.append("pip check: " + "; ".join(broken[dist.name][:3]))
        message = f"{shown}: " + ("; ".join(parts) if parts else "up to date")
        return Finding(check, status, message, value=dist.version, evidence=evidence,
                       security=bool(security)), changes

    def proposal(self, kind: str, bucket: dict, facts) -> Proposal:
        from zenctl.agents.dependency_manager import prove

        target, changes = self.target, bucket["changes"]
        seen, advisories = set(), []
        for a in bucket["advisories"]:
            if a["id"] not in seen:
                seen.add(a["id"])
                advisories.append({k: a[k] for k in ("id", "aliases", "fixed", "severity", "package")})
        params = {
            "target": self.name, "type": "python", "python": facts.python,
            # stored with the action and printed by --json: never the credentials (pip and uv read them from
            # ~/.netrc; the full URLs are in the proposal's context, which is never written)
            "index_url": idx.secret_free(facts.index_url),
            "extra_index_urls": [idx.secret_free(u) for u in facts.extra_index_urls],
            "requirements": [os.path.abspath(p) for p in target.requirements],
            "constraints": [os.path.abspath(p) for p in target.constraints],
            "test": {"argv": target.test.command, "timeout": target.test.timeout,
                     "cwd": target.test.cwd or target.venv or os.path.dirname(os.path.dirname(facts.python))}
            if target.test else None,
            "store": str(prove.store_for(self.ctx.state.path)),
            "changes": changes, "group": bucket["group"], "advisories": advisories,
        }
        listed = ", ".join(f"{c['name']} {c['from']} -> {c['to']}" for c in changes)
        why = {"deps.upgrade_security": "fixes " + ", ".join(a["id"] for a in advisories[:MAX_LISTED]),
               "deps.upgrade_major": "major upgrade" + (" (fixes " + ", ".join(a["id"] for a in advisories[:3]) + ")"
                                                        if advisories else ""),
               "deps.upgrade_minor": "minor upgrade", "deps.upgrade_patch": "patch upgrade"}[kind]
        where = f"{self.name}:group:{bucket['group']}" if bucket["group"] else f"{self.name}:{changes[0]['name']}"
        context = {"index_url": facts.index_url, "extra_index_urls": facts.extra_index_urls}
        return Proposal(kind, where, params, untrusted.line(f"{listed}: {why}"), bucket["check"], context=context)


def _canon(name: str) -> str:
    from zenctl.agents.dependency_manager.names import canonical

    return canonical(name)


def _affects_any(members):
    def affects(version: str) -> bool:
        try:
            v = Version(version)
        except InvalidVersion:
            return False
        return any(a.affects(v) for a in members)
    return affects


def _below(fixed: str | None):
    def affects(version: str) -> bool:
        if fixed is None:
            return True
        try:
            return Version(version) < Version(fixed)
        except InvalidVersion:
            return False
    return affects


def _vkey(text: str):
    try:
        return (0, Version(text))
    except InvalidVersion:
        return (1, text)


_ORDER = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}


def _worse(a: str, b: str) -> str:
    return a if _ORDER[a] >= _ORDER[b] else b
