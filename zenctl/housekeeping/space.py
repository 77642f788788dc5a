"""Disk-space arithmetic, as df counts it: what a mount uses, and what must be freed to bring it under a threshold.

The health agent's disk gauge and the housekeeping that frees space use the same formula, so "over 90%" means
the same to both.
"""

import math
import os

from zenctl.core.units import human_bytes


def space(vfs: os.statvfs_result) -> tuple[int, int]:
    """(used, available) bytes as df counts them: used% is used / (used + available), the share of the space
    non-root users can use that is taken."""
    return (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize, vfs.f_bavail * vfs.f_frsize


def needed_bytes(mountpoint: str, threshold: float) -> int:
    """Bytes to free for the mount's use (used / (used + available), as df counts) to be at or under threshold."""
    used, available = space(os.statvfs(mountpoint))
    return max(0, math.ceil(used - threshold / 100 * (used + available)))


def over(mountpoint: str, threshold: float) -> str | None:
    """How far over its threshold the mount still is, or None when it is back under."""
    needed = needed_bytes(mountpoint, threshold)
    return f"{mountpoint} still needs {human_bytes(needed)} freed to be under {threshold:g}%" if needed else None
