"""The floor for `zenctl health check`: the same readings with nothing around them, written as one SQLite row.

CPU times, memory, swap, load and the usage of every mount (as zenctl's embedded defaults read them: kernel
pseudo file systems skipped, each mount point once), then one INSERT into a table of JSON rows. This is what a
health check cannot avoid doing; bench/startup.py measures zenctl against it.

Run: python bench/floor_health.py DB_PATH
"""

import json
import os
import sqlite3
import sys
import time

import psutil

PSEUDO_FS = {
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "configfs", "fusectl", "autofs", "binfmt_misc", "hugetlbfs", "nsfs", "rpc_pipefs",
    "efivarfs", "squashfs", "iso9660", "udf", "selinuxfs", "ramfs",
}


def mounts() -> dict[str, list[float | None]]:
    """{mount point: [disk %, inode %]} of every real mount, disk % counted as df does."""
    usage = {}
    for part in psutil.disk_partitions(all=True):
        if part.fstype in PSEUDO_FS or part.mountpoint in usage:
            continue
        try:
            vfs = os.statvfs(part.mountpoint)
        except OSError:
            usage[part.mountpoint] = [None, None]
            continue
        used, avail = vfs.f_blocks - vfs.f_bfree, vfs.f_bavail
        inodes = 100.0 * (vfs.f_files - vfs.f_ffree) / vfs.f_files if vfs.f_files else None
        usage[part.mountpoint] = [100.0 * used / (used + avail) if used + avail else 0.0, inodes]
    return usage


def main() -> None:
    times = psutil.cpu_times()
    reading = {
        "ts": time.time(),
        "cpu": times._asdict(),
        "boot_time": psutil.boot_time(),
        "memory_percent": psutil.virtual_memory().percent,
        "swap_percent": psutil.swap_memory().percent,
        "load": os.getloadavg(),
        "mounts": mounts(),
    }
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS readings (ts REAL NOT NULL, data TEXT NOT NULL)")
    conn.execute("INSERT INTO readings VALUES (?, ?)", (reading["ts"], json.dumps(reading)))
    conn.close()


if __name__ == "__main__":
    main()
