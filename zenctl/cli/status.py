"""`zenctl status`: each agent's last run."""

from zenctl.cli.common import ConfigOpt, DbOpt, JsonOpt, QuietOpt, open_db, print_json


def status(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Show each agent's last run: when, result, wall time, CPU seconds, peak RSS."""
    from zenctl.core.config import load_config
    from zenctl.core.status import agent_status

    rows = agent_status(open_db(db, create=False), load_config(config).config)
    problems = [r for r in rows if r["last_run"] and r["last_run"]["status"] not in ("ok", "running")]
    if quiet and not problems:
        return
    if json:
        print_json({"agents": rows})
        return
    from zenctl.core.render import render_status

    render_status(rows)
