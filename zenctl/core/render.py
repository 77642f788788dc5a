"""Human output: rich tables for runs and status. (JSON shapes live beside the data they print.)

Every value shown comes from the state file, a probe or a peer, so it goes through `text()`: control characters
escaped (an OSC 52 or a title change in an alert summary never reaches the terminal) and rich markup taken literally.
"""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from zenctl.core.runtime import RunResult
from zenctl.core.timeutil import for_person
from zenctl.core.untrusted import line

STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "unknown": "magenta",
         "applied": "green", "failed": "bold red", "previewed": "cyan", "awaiting_approval": "yellow",
         "notified": "blue", "skipped": "dim", "error": "bold red", "overlap": "magenta", "running": "cyan",
         "held": "magenta", "deferred": "yellow", "rejected": "dim", "pending": "yellow", "approved": "green",
         "executed": "green", "expired": "dim", "void": "dim", "sent": "green", "stopped": "magenta",
         "killed": "bold red", "interrupted": "bold red"}


def console() -> Console:
    # cron has no terminal: give tables room instead of rich's 80-column default
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=160)
    return out


def text(value) -> str:
    """Untrusted text for the console: control characters escaped (line by line, so a diff keeps its lines) and
    rich markup shown as is."""
    return "\n".join(escape(line(part)) for part in str(value).split("\n"))


def styled(status: str) -> str:
    style = STYLE.get(status)
    return f"[{style}]{status.upper()}[/]" if style else text(status.upper())


def _value(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:zg}{unit}" if isinstance(value, (int, float)) else text(value)  # z: never "-0"


def render_run(result: RunResult) -> None:
    out = console()
    if result.findings:
        table = Table(title=f"{result.agent} — run {result.run_id}" + (" (dry-run)" if result.dry_run else ""),
                      title_justify="left")
        for column in ("Status", "Check", "Value", "Threshold", "Message"):
            table.add_column(column, overflow="fold")
        for f in result.findings:
            table.add_row(styled(f.status), text(f.check), _value(f.value, f.unit), _value(f.threshold, f.unit),
                          text(f.message))
        out.print(table)
    if result.actions:
        table = Table(title="Actions", title_justify="left")
        for column in ("ID", "Kind", "Target", "Status", "Change", "Why"):
            table.add_column(column, overflow="fold")
        for a in result.actions:
            table.add_row(text(a.id), text(a.kind), text(a.target), styled(a.status), text(a.message or a.preview),
                          text(a.reason))
        out.print(table)
    for note in result.notes:
        out.print(f"[yellow]ladder:[/] {text(note)}")
    summary = f"{text(result.agent)}: {styled(result.status)}"
    if not result.error:
        summary += f" — {len(result.findings)} checks, {len(result.actions)} actions" if result.findings or \
            not result.actions else f" — {len(result.actions)} actions"
    out.print(summary)


def render_rows(title: str, rows: list[dict], columns: tuple[str, ...]) -> None:
    """A plain table of dict rows; status-like columns coloured."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " ").capitalize(), overflow="fold")
    for row in rows:
        table.add_row(*[styled(str(row[c])) if c in ("status", "state") and row[c] else
                        ("" if row[c] is None else text(row[c])) for c in columns])
    console().print(table if rows else f"{title}: none")


def render_approvals(rows: list[dict]) -> None:
    render_rows("Approval requests", rows, ("id", "agent", "kind", "target", "status", "preview", "requests",
                                            "expires"))


def render_approval(row: dict) -> None:
    out = console()
    for key in ("id", "status", "agent", "problem", "kind", "target", "preview", "reason", "plan_hash", "params",
                "created", "updated", "expires", "requests", "decided_by", "decided_at", "comment", "action_id"):
        value = "-" if row[key] is None else styled(row[key]) if key == "status" else text(row[key])
        out.print(f"[bold]{key:>10}[/]  {value}", soft_wrap=True)


def _times(rows: list[dict], *keys: str) -> list[dict]:
    """Rows with their time columns as a person reads them (the report itself, and --json, keep full precision)."""
    return [{**row, **{key: for_person(row[key]) for key in keys}} for row in rows]


def render_status(report: dict) -> None:
    out = console()
    if report["safe_mode"]:
        out.print(f"[bold red]SAFE MODE[/] since {text(for_person(report['safe_mode']['since']))}: "
                  f"{text(report['safe_mode']['reason'])} (zenctl resume)")
    for stop in report["stopped"]:
        out.print(f"[magenta]{'EMERGENCY-' if stop['emergency'] else ''}STOPPED[/] {text(stop['agent'])} by "
                  f"{text(stop['by'])} at {text(for_person(stop['at']))}: {text(stop['reason'])}")
    for agent, runs in report.get("notify_only_runs", {}).items():
        out.print(f"[yellow]notify-only[/] {text(agent)}: next {text(runs)} run(s) apply nothing")
    if report["approvals"]:
        render_rows("Pending approvals", _times(report["approvals"], "expires"),
                    ("id", "agent", "kind", "target", "status", "preview", "expires"))
    if report["circuits"]:
        render_rows("Open circuits", _times(report["circuits"], "opened", "half_opens"),
                    ("kind", "target", "state", "failures", "opened", "half_opens"))
    if report["problems"]:
        render_rows("Problems by escalation level", report["problems"],
                    ("level", "agent", "check_name", "status", "state", "attempts", "message"))
    if report["undelivered_alerts"]:
        render_rows("Alerts not yet delivered", report["undelivered_alerts"],
                    ("id", "channel", "event", "status", "summary", "last_error", "held_by"))
    _render_agents(report["agents"])


def _render_agents(rows: list[dict]) -> None:
    from zenctl.core import registry

    available = registry.available()
    table = Table(title="Agents", title_justify="left")
    for column in ("Agent", "Enabled", "Schedule", "Last run", "Result", "Wall s", "CPU s", "Peak RSS", "Run",
                   "Next due", "Message"):
        table.add_column(column, overflow="fold")
    for r in rows:
        run = r["last_run"]
        enabled = ("yes" if r["enabled"] else "no") + (f" as {r['run_as']}" if r.get("run_as") else "")
        due = "[bold red]STALE[/]" if r.get("stale") else text(for_person(r.get("next_due")))
        if r["enabled"] and r["agent"] not in available:  # configured ahead of the release that brings it
            due = "[yellow]not in this release[/]"
        message = text(r["stale"]) if r.get("stale") else ""
        if run is None:
            table.add_row(r["agent"], text(enabled), text(r.get("schedule", "")), "never", "-", "-", "-", "-", "-",
                          due, message)
            continue
        cpu = (run["cpu_user_seconds"] or 0) + (run["cpu_system_seconds"] or 0)
        rss = f"{run['peak_rss_bytes'] / 1048576:.1f} MiB" if run["peak_rss_bytes"] else "-"
        wall = f"{run['wall_seconds']:.2f}" if run["wall_seconds"] is not None else "-"
        table.add_row(r["agent"], text(enabled), text(r.get("schedule", "")),
                      text(for_person(run["started"])), styled(run["status"]), wall, f"{cpu:.2f}", rss,
                      text(run["id"]), due, message or text(run["message"] or ""))
    console().print(table)
