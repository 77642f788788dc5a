"""Human output: rich tables for runs and status. (JSON shapes live beside the data they print.)"""

from rich.console import Console
from rich.table import Table

from zenctl.core.runtime import RunResult

STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "unknown": "magenta",
         "applied": "green", "failed": "bold red", "previewed": "cyan", "awaiting_approval": "yellow",
         "notified": "blue", "skipped": "dim", "error": "bold red", "overlap": "magenta", "running": "cyan"}


def console() -> Console:
    # cron has no terminal: give tables room instead of rich's 80-column default
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)
    return out


def styled(status: str) -> str:
    return f"[{STYLE.get(status, '')}]{status.upper()}[/]"


def _value(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:g}{unit}" if isinstance(value, (int, float)) else str(value)


def render_run(result: RunResult) -> None:
    out = console()
    if result.findings:
        table = Table(title=f"{result.agent} — run {result.run_id}" + (" (dry-run)" if result.dry_run else ""),
                      title_justify="left")
        for column in ("Status", "Check", "Value", "Threshold", "Message"):
            table.add_column(column, overflow="fold")
        for f in result.findings:
            table.add_row(styled(f.status), f.check, _value(f.value, f.unit), _value(f.threshold, f.unit),
                          f.message)
        out.print(table)
    if result.actions:
        table = Table(title="Actions", title_justify="left")
        for column in ("ID", "Kind", "Target", "Status", "Change", "Why"):
            table.add_column(column, overflow="fold")
        for a in result.actions:
            table.add_row(a.id, a.kind, a.target, styled(a.status), a.message or a.preview, a.reason)
        out.print(table)
    summary = f"{result.agent}: {styled(result.status)}"
    if not result.error:
        summary += f" — {len(result.findings)} checks, {len(result.actions)} actions"
    out.print(summary)


def render_status(rows: list[dict]) -> None:
    table = Table(title="Agents", title_justify="left")
    for column in ("Agent", "Enabled", "Last run", "Result", "Wall s", "CPU s", "Peak RSS", "Run", "Message"):
        table.add_column(column, overflow="fold")
    for r in rows:
        run = r["last_run"]
        if run is None:
            table.add_row(r["agent"], "yes" if r["enabled"] else "no", "never", "-", "-", "-", "-", "-", "")
            continue
        cpu = (run["cpu_user_seconds"] or 0) + (run["cpu_system_seconds"] or 0)
        rss = f"{run['peak_rss_bytes'] / 1048576:.1f} MiB" if run["peak_rss_bytes"] else "-"
        wall = f"{run['wall_seconds']:.2f}" if run["wall_seconds"] is not None else "-"
        table.add_row(r["agent"], "yes" if r["enabled"] else "no", f"{run['started']} ({r['ago']} ago)",
                      styled(run["status"]), wall, f"{cpu:.2f}", rss, run["id"], run["message"] or "")
    console().print(table)
