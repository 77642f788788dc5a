"""Housekeeping plans: what tmp.clean, logs.rotate and cache.prune would do now, as a finding and proposals. Used by
`zenctl maintain` and by the health check when a mount is over its disk threshold."""

import json
import os

from zenctl.housekeeping import logrotate
from zenctl.core.units import human_bytes
from zenctl.core.actions import Proposal
from zenctl.core.agent import Finding
from zenctl.core.untrusted import name as shown


def tmp_plan(spec, now: float) -> tuple[Finding, list[Proposal], int]:
    """A dry walk of one root: the finding says what is there to clean, the proposal cleans it."""
    from zenctl.housekeeping.tmpclean import Walker

    sweep = Walker(spec, now).run()
    check = f"tmp:{spec.root}"
    evidence = {"files": sweep.files, "dirs": sweep.dirs, "bytes": sweep.bytes, "kept_open": sweep.kept_open,
                "kept_special": sweep.kept_special, "kept_other_fs": sweep.kept_other_fs,
                "kept_deep": sweep.kept_deep, "stopped": sweep.stopped, "errors": sweep.errors[:20]}
    if sweep.errors and not (sweep.files or sweep.dirs):
        return Finding(check, "unknown", sweep.errors[0], None, None, "", evidence), [], 0
    finding = Finding(check, "ok", sweep.summary("old enough to delete:"), sweep.bytes, None, "B", evidence)
    if not (sweep.files or sweep.dirs):
        return finding, [], 0
    params = {**spec.model_dump(mode="json"), "files": sweep.files, "dirs": sweep.dirs, "bytes": sweep.bytes}
    return finding, [Proposal("tmp.clean", spec.root, params, f"{spec.root}: {sweep.files} old file(s), "
                                                             f"{sweep.dirs} empty dir(s)", check)], sweep.bytes


def recorded_rotations(state, set_name: str) -> dict[str, float]:
    """When zenctl last rotated each log of a set, from its own audit of logs.rotate (rotations rolled back do
    not count). Unreadable records are skipped: a broken record never stops rotation."""
    rows = state.conn.execute(
        "SELECT before FROM actions WHERE kind = 'logs.rotate' AND target = ? AND status IN ('applied', 'failed') "
        "AND undone_by IS NULL ORDER BY finished DESC LIMIT 50", (set_name,)).fetchall()
    recorded: dict[str, float] = {}
    for (before,) in rows:
        try:
            for log, when in (json.loads(before or "{}").get("rotated") or {}).items():
                if isinstance(when, (int, float)):
                    recorded.setdefault(log, float(when))
        except (ValueError, AttributeError):
            continue
    return recorded


def logs_plan(spec, recorded: dict[str, float], now: float,
              force: str | None = None) -> tuple[Finding, list[Proposal], int]:
    plan = logrotate.plan_set(spec, recorded, now, force)
    check = f"logs:{spec.name}"
    frees = sum(f.frees for f in plan.files)
    evidence = {"due": [{"log": shown(f.log), "why": f.why, "frees": f.frees} for f in plan.files],
                "not_due": plan.not_due, "errors": plan.errors[:20]}
    if not plan.files:
        if plan.errors:
            return Finding(check, "warning", f"{spec.name}: {plan.errors[0]}", None, None, "", evidence), [], 0
        what = f"{plan.not_due} log(s), none due" if plan.not_due else "no log file matches (that is fine)"
        return Finding(check, "ok", f"{spec.name}: {what}", 0, None, "", evidence), [], 0
    status = "warning" if plan.errors else "ok"
    message = f"{spec.name}: {len(plan.files)} log(s) due for rotation, frees about {human_bytes(frees)}" + (
        f"; {len(plan.errors)} error(s), first: {plan.errors[0]}" if plan.errors else "")
    params = {"set": spec.name, "files": [{"log": f.log, "why": f.why, "steps": f.steps, "frees": f.frees}
                                          for f in plan.files],
              "postrotate": spec.postrotate, "postrotate_timeout": spec.postrotate_timeout, "frees": frees,
              "su": plan.su}
    reason = f"{spec.name}: " + "; ".join(f"{shown(f.log)} {f.why}" for f in plan.files[:5])
    # rotating the other logs does not repair a refusal (a symlink, a directory others can write): the warning stays
    repairs = "" if plan.errors else check
    return (Finding(check, status, message, len(plan.files), None, "", evidence),
            [Proposal("logs.rotate", spec.name, params, reason, repairs)], frees)


def cache_plan(spec, now: float, free_at_least: int = 0) -> tuple[Finding, list[Proposal], int]:
    from zenctl.housekeeping.cacheprune import CacheWalker, choose

    walker = CacheWalker(spec)
    sweep = walker.run()
    check = f"cache:{spec.path}"
    total = sum(size for _, size in walker.used)
    cutoff, files, freed = choose(walker.used, spec, now, free_at_least)
    evidence = {"files": len(walker.used), "bytes": total, "prune_files": files, "prune_bytes": freed,
                "kept_open": sweep.kept_open, "errors": sweep.errors[:20]}
    if sweep.errors and not walker.used:
        return Finding(check, "unknown", sweep.errors[0], None, None, "", evidence), [], 0
    message = f"{spec.path}: {len(walker.used)} file(s), {human_bytes(total)}"
    finding = Finding(check, "ok", message + (f"; {files} to prune ({human_bytes(freed)})" if files else
                                              ", within its caps"), total, spec.max_size, "B", evidence)
    if cutoff is None:
        return finding, [], 0
    params = {**spec.model_dump(mode="json"), "cutoff": cutoff, "files": files, "bytes": freed, "total": total}
    caps = [f"max_size {human_bytes(spec.max_size)}" if spec.max_size is not None else "",
            f"max_age {spec.max_age:g} s" if spec.max_age is not None else "",
            f"{human_bytes(free_at_least)} needed on its disk" if free_at_least else ""]
    reason = f"{spec.path}: {human_bytes(total)} over its caps ({', '.join(c for c in caps if c)})"
    return finding, [Proposal("cache.prune", spec.path, params, reason, check)], freed


def same_device(path: str, device: int) -> bool:
    try:
        return os.stat(path).st_dev == device
    except OSError:
        return False
