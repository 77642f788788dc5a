"""Quantities as people read them, shared by every agent's messages."""


def human_bytes(count: int | None) -> str:
    """A byte count as people read it: 512 B, 1.5 KiB, 2.0 GiB."""
    value = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
