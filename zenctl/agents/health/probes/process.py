"""`process` checks: how many processes match (a regex over name and command line, or a pid file), and how
much memory they hold, which the memory-leak judgement reads from stored samples."""

import os
import re
import stat

import psutil

from zenctl.agents.health.probes import Metric, Outcome


def matching(service) -> list[psutil.Process]:
    """The processes a check means; never zenctl itself."""
    if service.pidfile:
        pid = _read_pid(service.pidfile)
        if pid is None:
            return []
        try:
            process = psutil.Process(pid)
            return [] if process.status() == psutil.STATUS_ZOMBIE else [process]
        except psutil.Error:
            return []
    pattern, me = re.compile(service.pattern), os.getpid()
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        info = process.info
        if process.pid == me or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        text = " ".join(info["cmdline"] or []) or info["name"] or ""
        if pattern.search(info["name"] or "") or pattern.search(text):
            found.append(process)
    return found


def _read_pid(path: str) -> int | None:
    """The pid in a pid file, which its service (not root) writes: a regular file read without blocking (a FIFO
    in its place would hang the check) and at most 64 bytes of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return int(os.read(fd, 64).split()[0])
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(fd)


def rss_of(processes: list[psutil.Process]) -> tuple[int, float | None]:
    """Total resident memory of the processes, and when the oldest of them started."""
    total, started = 0, None
    for process in processes:
        try:
            total += process.memory_info().rss
            created = process.create_time()
        except psutil.Error:
            continue
        started = created if started is None else min(started, created)
    return total, started


def probe_process(service, deadline: float) -> Outcome:
    processes = matching(service)
    count = len(processes)
    what = f"pid file {service.pidfile}" if service.pidfile else f"/{service.pattern}/"
    rss, started = rss_of(processes)
    pids = sorted(p.pid for p in processes)
    evidence = {"count": count, "pids": pids[:20], "rss_bytes": rss, "started": started}
    metrics = [Metric("procs", count, "", None, None), Metric("rss", rss, "B")]
    if count < service.min:
        return Outcome("critical", f"{count} process(es) match {what}, want at least {service.min}", down=True,
                       metrics=metrics, evidence=evidence)
    if service.max is not None and count > service.max:
        return Outcome("warning", f"{count} process(es) match {what}, want at most {service.max}",
                       metrics=metrics, evidence=evidence)
    return Outcome("ok", f"{count} process(es) match {what} (pids {', '.join(map(str, pids[:5]))}"
                         f"{'…' if count > 5 else ''}; {rss / 1048576:.1f} MiB resident)", metrics=metrics,
                   evidence=evidence)


def slope_mb_per_hour(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (seconds, bytes) points in MB/h, and R² (how steadily it grows: 1 = a line)."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    var_v = sum((v - mean_v) ** 2 for _, v in points)
    if var_t == 0:
        return 0.0, 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    slope = cov / var_t
    r2 = cov * cov / (var_t * var_v) if var_v else 0.0
    return slope * 3600 / 1e6, r2
