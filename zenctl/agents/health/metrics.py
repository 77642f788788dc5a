"""Collecting host facts: the only part of the health check that reads the machine (through psutil and statvfs).

CPU use is not sampled with a sleep: the cumulative CPU counters are stored each run and the next run takes the
delta. Only the very first run (or the first after a reboot) takes a short sample.
"""

import os
import stat
import threading
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import psutil

from zenctl.housekeeping.space import space

FIRST_RUN_SAMPLE_SECONDS = 0.1
# Kernel and virtual file systems whose usage means nothing; squashfs and ISO images are full by design.
_PSEUDO_FS = {
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "configfs", "fusectl", "autofs", "binfmt_misc", "hugetlbfs", "nsfs", "rpc_pipefs",
    "efivarfs", "squashfs", "iso9660", "udf", "selinuxfs", "ramfs",
}


@dataclass
class CpuCounters:
    """Cumulative CPU seconds since boot (all CPUs), and the boot they belong to."""

    busy: float
    total: float
    boot_time: float


@dataclass
class MountFacts:
    mountpoint: str
    device: str
    fstype: str
    disk_percent: float | None = None
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    inode_percent: float | None = None  # None where the file system has no inode limit (btrfs, tmpfs -o nr_inodes=0)
    error: str | None = None


@dataclass
class HostFacts:
    ts: float
    cpu: CpuCounters
    cpu_count: int
    short_sample_percent: float | None  # set when no usable earlier counters existed
    load: tuple[float, float, float]
    memory_percent: float
    swap_percent: float | None  # None when there is no swap
    mounts: list[MountFacts] = field(default_factory=list)


def read_cpu() -> CpuCounters:
    times = psutil.cpu_times()
    # guest time is already counted in user on Linux; idle and iowait are the CPU doing nothing
    total = sum(getattr(times, name) for name in times._fields if name not in ("guest", "guest_nice"))
    idle = times.idle + getattr(times, "iowait", 0.0)
    return CpuCounters(total - idle, total, psutil.boot_time())


def busy_percent(start: CpuCounters, end: CpuCounters) -> float:
    """The CPU % between two readings, within 0..100. On a quiet span the float sums' rounding (or a counter that
    steps back: Linux's iowait, proc(5)) can come out a hair below zero: that is 0, never -0.0 in a message or
    the JSON."""
    span = end.total - start.total
    if span <= 0:
        return 0.0
    return min(100.0, max(0.0, 100.0 * (end.busy - start.busy) / span)) + 0.0  # + 0.0 turns -0.0 into 0.0


def short_sample(before: CpuCounters) -> tuple[CpuCounters, float]:
    """Counters after a short wait and the CPU % over it (first run only)."""
    time.sleep(FIRST_RUN_SAMPLE_SECONDS)
    after = read_cpu()
    return after, busy_percent(before, after)


def collect(previous: CpuCounters | None, ignore_mounts: list[str], statvfs_timeout: float) -> HostFacts:
    """Read the host now. `previous` are the last stored counters of this boot, if any."""
    cpu = read_cpu()
    short = None
    if previous is None or previous.boot_time != cpu.boot_time or cpu.total <= previous.total:
        cpu, short = short_sample(cpu)
    memory = psutil.virtual_memory()
    swap = psutil.swap_memory()
    return HostFacts(
        ts=time.time(),
        cpu=cpu,
        cpu_count=psutil.cpu_count() or 1,
        short_sample_percent=short,
        load=os.getloadavg(),
        memory_percent=memory.percent,
        swap_percent=swap.percent if swap.total else None,
        mounts=read_mounts(ignore_mounts, statvfs_timeout),
    )


def real_mounts(ignore: list[str]) -> list:
    """Mounts that hold data: not kernel pseudo file systems, each mount point once, directories only."""
    seen: set[str] = set()
    chosen = []
    for part in psutil.disk_partitions(all=True):
        mountpoint = part.mountpoint
        if part.fstype in _PSEUDO_FS or mountpoint in seen:
            continue
        if part.fstype == "tmpfs" and (mountpoint.startswith(("/sys", "/proc")) or (
                mountpoint.startswith("/dev") and mountpoint != "/dev/shm")):
            continue
        if any(fnmatchcase(mountpoint, pattern) for pattern in ignore):
            continue
        try:
            if not stat.S_ISDIR(os.lstat(mountpoint).st_mode):
                continue  # a file bind-mounted over another (containers' /etc/hosts)
        except OSError:
            pass  # a mount we cannot even stat is reported as unknown below
        seen.add(mountpoint)
        chosen.append(part)
    return chosen


def read_mounts(ignore: list[str], timeout: float) -> list[MountFacts]:
    """Usage of every real mount, each statvfs in its own thread so one hung NFS mount costs `timeout`, not
    the run."""
    facts = [MountFacts(p.mountpoint, p.device, p.fstype) for p in real_mounts(ignore)]
    threads = [threading.Thread(target=_statvfs, args=(m,), daemon=True) for m in facts]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for mount, thread in zip(facts, threads):
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            mount.error = f"statvfs did not answer within {timeout:g} s (hung network mount?)"
    return facts


def _statvfs(mount: MountFacts) -> None:
    try:
        vfs = os.statvfs(mount.mountpoint)
    except OSError as exc:
        mount.error = f"statvfs failed: {exc.strerror}"
        return
    used, avail = space(vfs)
    mount.disk_percent = 100.0 * used / (used + avail) if used + avail else 0.0
    mount.disk_free_bytes = avail
    mount.disk_total_bytes = vfs.f_blocks * vfs.f_frsize
    if vfs.f_files:
        mount.inode_percent = 100.0 * (vfs.f_files - vfs.f_ffree) / vfs.f_files
