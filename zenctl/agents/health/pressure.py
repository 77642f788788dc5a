"""Disk-space housekeeping: when a mount is over disk_threshold, the housekeeping configured on that mount is
proposed in order (tmp.clean, then logs.rotate, then cache.prune) until what they would free brings it back under.

Each proposal repairs the mount's disk finding, so the escalation ladder follows it like any repair (retries with
backoff, then alerts) and each preview says how much it frees. Logs on a full mount are rotated even when not due
yet (what an administrator would do with `logrotate -f`), and a cache is pruned beyond its own caps by what is
still needed. The last proposal re-reads the mount when it verifies: if the mount is still over, the repair
failed, whatever the earlier ones freed.
"""

import dataclasses
import os

from zenctl.core.actions import Proposal
from zenctl.core.agent import Finding
from zenctl.core.units import human_bytes
from zenctl.housekeeping import plans as housekeeping
from zenctl.housekeeping.logrotate import matching_logs, su_ids
from zenctl.housekeeping.space import needed_bytes


def plan(findings: list[Finding], cfg, state, now: float) -> list[Proposal]:
    proposals: list[Proposal] = []
    for finding in findings:
        if not finding.check.startswith("disk:") or finding.status != "critical" or finding.value is None:
            continue
        proposals += plan_mount(finding, cfg, state, now)
    return proposals


def plan_mount(finding: Finding, cfg, state, now: float) -> list[Proposal]:
    mountpoint = finding.evidence["mountpoint"]
    try:
        device = os.stat(mountpoint).st_dev
        needed = needed_bytes(mountpoint, cfg.disk_threshold)
    except OSError:
        return []
    why = f"disk {mountpoint} {finding.value:g}% > {cfg.disk_threshold:g}%, {human_bytes(needed)} to free"
    chosen: list[tuple[Proposal, int]] = []
    freed = 0
    for planned in _candidates(cfg, state, device, why, now, lambda: needed - freed):
        for proposal, frees in planned:
            chosen.append((proposal, frees))
            freed += frees
        if freed >= needed:
            break
    finding.evidence["housekeeping"] = [{"kind": p.kind, "target": p.target, "frees": f} for p, f in chosen]
    if not chosen:
        finding.message += "; no housekeeping configured on this mount (agents.system_health.tmp, logs, cache)"
        return []
    finding.message += f"; housekeeping frees about {human_bytes(freed)} of the {human_bytes(needed)} needed"
    out = [dataclasses.replace(p, check=finding.check, reason=f"{why}: {p.reason}") for p, _ in chosen]
    out[-1].context["disk"] = {"mountpoint": mountpoint, "threshold": cfg.disk_threshold}
    return out


def _candidates(cfg, state, device: int, why: str, now: float, still_needed):
    """Per configured entry on the mount, in the order the issue of space is best solved: what it proposes."""
    for spec in cfg.tmp:
        if housekeeping.same_device(spec.root, device):
            _, proposals, frees = housekeeping.tmp_plan(spec, now)
            yield [(p, frees) for p in proposals]
    for spec in cfg.logs:
        try:
            su = su_ids(spec)
        except KeyError:  # its su account is gone since the config was loaded: the set's own finding says so
            continue
        if any(housekeeping.same_device(log, device) for log in matching_logs(spec.paths, su)):
            recorded = housekeeping.recorded_rotations(state, spec.name)
            _, proposals, frees = housekeeping.logs_plan(spec, recorded, now, force=why)
            yield [(p, frees) for p in proposals]
    for spec in cfg.cache:
        if housekeeping.same_device(spec.path, device):
            _, proposals, frees = housekeeping.cache_plan(spec, now, max(0, still_needed()))
            yield [(p, frees) for p in proposals]
