"""`zenctl status`: the host's governance state and each agent's last run."""

from zenctl.clikit import ConfigOpt, DbOpt, JsonOpt, QuietOpt, open_db, print_json


def status(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Show stop flag or safe mode, pending approvals, open circuits, problems by escalation level, alerts not yet
    delivered, and each agent's schedule and last run: when, result, wall time, CPU seconds, peak RSS, when it
    is next due, and STALE when it missed its runs."""
    from zenctl.core.config import load_config
    from zenctl.core.status import host_status

    report = host_status(open_db(db, create=False), load_config(config).config)
    problems = [r for r in report["agents"]
                if r["stale"] or (r["last_run"] and r["last_run"]["status"] not in ("ok", "running"))]
    attention = (report["stopped"] or report["safe_mode"] or report["approvals"] or report["circuits"]
                 or report["problems"] or report["undelivered_alerts"])
    if quiet and not problems and not attention:
        return
    if json:
        print_json(report)
        return
    from zenctl.core.render import render_status

    render_status(report)
