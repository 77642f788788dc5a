"""`zenctl approvals list|show`, `zenctl approve ID`, `zenctl reject ID`: the approval queue."""

import typer

from zenctl.clikit import ConfigOpt, DbOpt, JsonOpt, QuietOpt, error, open_db, print_json
from zenctl.core.untrusted import line

app = typer.Typer(help="The approval queue: actions whose policy mode is approve wait here for a person.",
                  no_args_is_help=True)
IdArg = typer.Argument(..., metavar="ID", help="The approval request's id (see 'zenctl approvals list').")
CommentOpt = typer.Option(None, "--comment", "-m", metavar="TEXT", help="Why; recorded with the decision.")


def _state(db: str | None):
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import StateError

    state = open_db(db, create=False)
    if state is None:
        raise StateError(f"{resolve_db_path(db)}: no state file yet, so no approval requests")
    return state


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include decided, expired and void requests."),
          db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """List open approval requests (pending, and approved ones waiting for the agent's next run)."""
    from zenctl.core import approvals

    state = open_db(db, create=False)
    if state is not None:
        approvals.expire_due(state)
    rows = approvals.listing(state, all_) if state else []
    if json:
        print_json({"approvals": rows})
    elif rows or not quiet:
        from zenctl.core.render import render_approvals

        render_approvals(rows)


@app.command("show")
def show(approval_id: str = IdArg, db: DbOpt = None, json: JsonOpt = False) -> None:
    """Show one request: the exact plan, its hash, the reason, who decided and when."""
    from zenctl.core import approvals

    state = _state(db)
    approvals.expire_due(state)
    row = approvals.get(state, approval_id)
    if json:
        print_json(row)
        return
    from zenctl.core.render import render_approval

    render_approval(row)


def _decide(approval_id: str, approve: bool, comment: str | None, config: str | None, db: str | None) -> dict:
    from zenctl.core import approvals
    from zenctl.core.config import load_config
    from zenctl.core.control import whoami
    from zenctl.errors import UsageError

    loaded = load_config(config)
    outcome = approvals.decide(_state(db), loaded.config, approval_id, approve, whoami(), comment)
    if outcome["error"]:
        raise UsageError(outcome["error"])
    return outcome["row"]


def approve(approval_id: str = IdArg, comment: str | None = CommentOpt,
            run: bool = typer.Option(False, "--run", help="Run the agent now, so the approved plan is applied at "
                                                          "once (only if the plan's hash still matches)."),
            config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Approve a pending request; it runs on the agent's next run (or now, with --run). Exit 3 when the id is
    unknown, already decided, expired, or you are not in policy.approvers."""
    row = _decide(approval_id, True, comment, config, db)
    if not run:
        if json:
            print_json({"approval": row})
        elif not quiet:
            print(line(f"approved {row['id']}: {row['kind']} {row['target']}: {row['preview']} "
                       f"(runs on the next {row['agent']} run, or: zenctl approve --run)"))
        return
    from zenctl.core import approvals, dispatch
    from zenctl.core.config import load_config
    from zenctl.core.runtime import as_json

    state = _state(db)
    result = dispatch.run_one(row["agent"], load_config(config), state.path)
    row = approvals.get(state, row["id"])
    if json:
        print_json({"approval": row, "run": as_json(result)})
    elif not quiet:
        from zenctl.core.render import render_run

        render_run(result)
        print(f"approval {row['id']}: {row['status']}" + (f" as action {row['action_id']}" if row["action_id"] else ""))
    if result.error:
        error(result.error)
    if row["status"] not in ("executed", "failed"):
        error(f"approval {row['id']} did not run: it is {row['status']}"
              + (f" ({row['comment']})" if row["status"] == "void" else ""))
    raise typer.Exit(result.exit_code)


def reject(approval_id: str = IdArg, comment: str | None = CommentOpt, config: ConfigOpt = None, db: DbOpt = None,
           json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Reject a pending request; the same plan is not asked for again until the request would have expired."""
    row = _decide(approval_id, False, comment, config, db)
    if json:
        print_json({"approval": row})
    elif not quiet:
        print(line(f"rejected {row['id']}: {row['kind']} {row['target']}"))
