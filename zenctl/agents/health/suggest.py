"""Suggestions: notify-only hints with their evidence, for a person to act on. They never change a run's status
(each is an OK finding whose check starts with `suggest:`) and never lead to an action.

- zombies: processes their parent does not reap; the parent is what to restart.
- top: when CPU, load, memory or swap is not OK, the processes using the most CPU (average since they started)
  and the most resident memory.
- swap: swap in use while most memory is free (pages swapped out earlier stay out until touched).
- largest directories of a mount over its disk warning, and the directories with the most entries of a mount over
  its inode warning, from one walk bounded by suggest_scan_seconds (it says when it stopped early). The walk stays
  on the mount: other file systems (st_dev) and other mounts of the same one (bind mounts, by mount point) are
  not entered.

Process and file names are anyone's to choose: they are escaped (`untrusted`) before they reach a message.
"""

import os
import re
import stat
import time

import psutil

from zenctl.core.units import human_bytes
from zenctl.core import untrusted
from zenctl.core.agent import Finding

TOP = 5
SWAP_HINT_PERCENT = 5.0  # swap use worth a hint ...
MEMORY_FREE_PERCENT = 50.0  # ... while memory use is under this


def suggestions(facts, findings: list[Finding], cfg) -> list[Finding]:
    out = []
    strained = {f.check for f in findings if f.status != "ok"} & {"cpu", "load", "memory", "swap"}
    processes = _processes() if strained or _any_zombie() else []  # the full scan costs ~0.16 ms a process
    zombies = [p for p in processes if p["status"] == psutil.STATUS_ZOMBIE]
    if zombies:
        out.append(_zombies(zombies, processes))
    if strained:
        out.append(_top(processes, facts.ts))
    if facts.swap_percent and facts.swap_percent > SWAP_HINT_PERCENT and facts.memory_percent < MEMORY_FREE_PERCENT:
        out.append(Finding("suggest:swap", "ok",
                           f"suggestion: swap {facts.swap_percent:.0f}% in use while memory is only "
                           f"{facts.memory_percent:.0f}% used; what was swapped out stays out until touched: "
                           "'swapoff -a && swapon -a' brings it back, a lower vm.swappiness keeps it in",
                           round(facts.swap_percent, 1), None, "%",
                           {"swap_percent": facts.swap_percent, "memory_percent": facts.memory_percent}))
    full = [f.evidence["mountpoint"] for f in findings if f.check.startswith(("disk:", "inode:"))
            and f.status in ("warning", "critical") and "mountpoint" in f.evidence]
    if full and cfg.suggest_scan_seconds > 0:
        deadline = time.monotonic() + cfg.suggest_scan_seconds
        for mountpoint in dict.fromkeys(full):
            out.append(_scan_finding(mountpoint, deadline))
    return out


def _any_zombie() -> bool:
    """Whether some process is a zombie, from the state field of each /proc/PID/stat (after the name's closing
    parenthesis), without psutil's per-process work; True where /proc cannot tell (the full scan decides)."""
    try:
        pids = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                line = f.read()
        except OSError:  # gone since the listing
            continue
        if line[line.rfind(b")") + 2:][:1] == b"Z":
            return True
    return False


def _processes() -> list[dict]:
    attrs = ["pid", "ppid", "name", "status", "cpu_times", "memory_info", "create_time"]
    processes = [p.info for p in psutil.process_iter(attrs, ad_value=None)]
    for process in processes:  # any user names its processes: undecodable bytes, terminal escapes
        process["name"] = untrusted.line(process["name"]) if process["name"] else process["name"]
    return processes


def _zombies(zombies: list[dict], processes: list[dict]) -> Finding:
    by_pid = {p["pid"]: p for p in processes}
    parents: dict[int, int] = {}
    for zombie in zombies:
        parents[zombie["ppid"]] = parents.get(zombie["ppid"], 0) + 1
    named = [f"{(by_pid.get(pid) or {}).get('name') or '?'} (pid {pid}, {count})"
             for pid, count in sorted(parents.items(), key=lambda item: -item[1])]
    return Finding("suggest:zombies", "ok",
                   f"suggestion: {len(zombies)} zombie process(es) not reaped by their parent: "
                   f"{', '.join(named[:TOP])}; restarting the parent clears them", len(zombies), None, "",
                   {"zombies": [{"pid": z["pid"], "ppid": z["ppid"], "name": z["name"]} for z in zombies[:50]]})


def _top(processes: list[dict], now: float) -> Finding:
    rows = []
    for p in processes:
        if p["status"] == psutil.STATUS_ZOMBIE:
            continue
        cpu = p["cpu_times"]
        alive = now - (p["create_time"] or now)
        rows.append({"pid": p["pid"], "name": p["name"],
                     "cpu_percent": round(100 * (cpu.user + cpu.system) / alive, 1) if cpu and alive > 1 else 0.0,
                     "rss_bytes": p["memory_info"].rss if p["memory_info"] else 0})
    by_cpu = sorted(rows, key=lambda r: -r["cpu_percent"])[:TOP]
    by_rss = sorted(rows, key=lambda r: -r["rss_bytes"])[:TOP]
    cpu_text = ", ".join(f"{r['name']} ({r['pid']}) {r['cpu_percent']:g}%" for r in by_cpu)
    rss_text = ", ".join(f"{r['name']} ({r['pid']}) {human_bytes(r['rss_bytes'])}" for r in by_rss)
    return Finding("suggest:top", "ok", f"suggestion: top by CPU since start: {cpu_text}; by memory: {rss_text}",
                   None, None, "", {"by_cpu": by_cpu, "by_rss": by_rss})


def _scan_finding(mountpoint: str, deadline: float) -> Finding:
    scan = scan_mount(mountpoint, deadline)
    largest = ", ".join(f"{d['path']} {human_bytes(d['bytes'])}" for d in scan["largest"]) or "nothing readable"
    crowded = ", ".join(f"{d['path']} ({d['entries']})" for d in scan["most_entries"][:3])
    partial = f" (stopped after {scan['seconds']:g} s, {scan['files']} files: partial)" if scan["partial"] else ""
    return Finding(f"suggest:space:{mountpoint}", "ok",
                   f"suggestion: largest directories on {mountpoint}: {largest}; most entries: {crowded}{partial}",
                   None, None, "", scan)


def scan_mount(mountpoint: str, deadline: float, depth: int = 3) -> dict:
    """Bytes under each directory down to `depth` below the mount, and entries per directory, without following
    symlinks or leaving the file system, until the deadline."""
    start = time.monotonic()
    device = os.lstat(mountpoint).st_dev
    others = _mount_points() - {mountpoint}
    sizes: dict[str, int] = {}
    entries: dict[str, int] = {}
    files, partial = 0, False
    stack = [(mountpoint, 0)]
    while stack:
        directory, level = stack.pop()
        try:
            with os.scandir(directory) as listing:
                children = list(listing)
        except OSError:
            continue
        entries[directory] = len(children)
        for number, entry in enumerate(children):
            if number % 1000 == 999 and time.monotonic() > deadline:
                partial = True
                break
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev == device and entry.path not in others:
                    stack.append((entry.path, level + 1))
                continue
            files += 1
            _add_up(sizes, mountpoint, entry.path, st.st_blocks * 512, depth)
        if partial or (files and time.monotonic() > deadline):
            partial = True
            break
    return {"largest": _largest(sizes), "partial": partial, "files": files,
            "seconds": round(time.monotonic() - start, 2),
            "most_entries": [{"path": untrusted.name(p), "entries": n}
                             for p, n in sorted(entries.items(), key=lambda i: -i[1])[:TOP]]}


def _mount_points() -> set[str]:
    """Every mount point (/proc/self/mountinfo, field 5, octal escapes undone); empty when /proc is missing."""
    try:
        with open("/proc/self/mountinfo", "rb") as info:
            lines = info.read().splitlines()
    except OSError:
        return set()
    unescape = re.compile(rb"\\([0-7]{3})")
    return {os.fsdecode(unescape.sub(lambda m: bytes([int(m.group(1), 8)]), line.split()[4]))
            for line in lines if len(line.split()) > 4}


def _add_up(sizes: dict[str, int], mountpoint: str, path: str, size: int, depth: int) -> None:
    relative = os.path.relpath(os.path.dirname(path), mountpoint)
    parts = [] if relative == "." else relative.split(os.sep)
    for level in range(1, min(depth, len(parts)) + 1):
        key = os.path.join(mountpoint, *parts[:level])
        sizes[key] = sizes.get(key, 0) + size


def _largest(sizes: dict[str, int]) -> list[dict]:
    """The biggest directories, preferring a subdirectory that holds (nearly) all of its parent's bytes."""
    biggest_child: dict[str, int] = {}
    for path, size in sizes.items():
        parent = os.path.dirname(path)
        biggest_child[parent] = max(biggest_child.get(parent, 0), size)
    ranked = sorted(sizes.items(), key=lambda item: -item[1])
    picked: list[tuple[str, int]] = []
    for path, size in ranked:
        explained = biggest_child.get(path, 0) >= 0.9 * size
        inside_picked = any(path.startswith(p + os.sep) or p.startswith(path + os.sep) for p, _ in picked)
        if size and not explained and not inside_picked:
            picked.append((path, size))
        if len(picked) == TOP:
            break
    return [{"path": untrusted.name(p), "bytes": s} for p, s in picked]
