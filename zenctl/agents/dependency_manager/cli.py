"""Dependency Management's commands: `zenctl deps scan` (the agent run, with a table like `pip list --outdated`)
and `zenctl deps show PACKAGE` (versions, advisories and the last proof in every target). `deps_scan` runs without
typer for cron's command lines (FAST)."""

import sys


def deps_scan(config: str | None = None, db: str | None = None, json: bool = False, quiet: bool = False,
              dry_run: bool = False, target: str | None = None) -> int:
    """Run the Dependency Management agent once (one target with --target); the exit code."""
    from zenctl.agents.dependency_manager.agent import DependencyManagerAgent, targets_of
    from zenctl.clikit import error, print_json, worth_printing
    from zenctl.core.config import load_config
    from zenctl.core.dispatch import run_instance
    from zenctl.core.state import resolve_db_path
    from zenctl.errors import UsageError

    loaded = load_config(config)
    section = loaded.config.agents.dependency_manager
    if target is not None:
        names = list(targets_of(section)[0])
        if target not in names:
            raise UsageError(f"--target {target!r}: no such target (configured: {', '.join(names)})")
    result = run_instance(DependencyManagerAgent(only=target), loaded, resolve_db_path(db), dry_run)
    if worth_printing(result, quiet):
        if json:
            from zenctl.core.runtime import as_json

            print_json(as_json(result))
        else:
            sys.stdout.write(render(result, quiet))
    if result.error:
        error(result.error)
    return result.exit_code


def render(result, quiet: bool = False) -> str:
    """The run as text: one line per target, a table like `pip list --outdated` (with the update type, the
    advisories and the action taken), then the other findings that are not OK."""
    from zenctl.core.untrusted import line

    actions: dict[str, list[str]] = {}
    for a in result.actions:
        for c in a.params.get("changes", []) or [{"name": a.target.rpartition(":")[2], "to": ""}]:
            check = f"deps:{a.params.get('target', '')}:{c['name']}"
            actions.setdefault(check, []).append(f"{a.kind.removeprefix('deps.')} {c.get('to', '')}: {a.status}")
    rows, notes, heads = [], [], []
    for f in result.findings:
        parts = f.check.split(":")
        e = f.evidence
        if len(parts) == 3 and "installed" in e:
            if f.status == "ok" and not e.get("latest") and not e.get("advisories"):
                continue
            advisories = ",".join(a["id"] + (f"->{a['fixed']}" if a.get("fixed") else "") for a in e["advisories"])
            rows.append([parts[1], parts[2], e["installed"], e.get("latest") or "", e.get("update_type") or "",
                         advisories or "-", "; ".join(actions.get(f.check, [])) or "-", f.status.upper()])
        elif len(parts) == 2 and parts[0] == "deps" and parts[1] != "advisories":
            heads.append(f"{f.status.upper():8} {f.message}")
        else:
            notes.append(f"{f.status.upper():8} {f.message}")
    out = [line(h) for h in heads if not quiet]
    if rows:
        header = ["Target", "Package", "Version", "Latest", "Type", "Advisories", "Action", "Status"]
        rows = [[line(str(c)) for c in r] for r in rows]
        widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    elif not notes and not result.error:
        out.append("everything is up to date")
    out += [line(n) for n in notes]
    if result.dry_run:
        out.append("dry run: nothing changed")
    return "\n".join(out) + "\n"


def deps_show(package: str, config: str | None = None, db: str | None = None, json: bool = False) -> int:
    """Versions, advisories and the last proof of PACKAGE in every python target."""
    from zenctl.agents.dependency_manager.show import show

    return show(package, config, db, json)


FAST = {("deps", "scan"): (deps_scan, {"--target": ("target", None)}, None)}


def commands() -> list[tuple[str, object]]:
    """The agent's commands for `zenctl --help` (the registry's `cli`)."""
    from typing import Annotated

    import typer

    from zenctl.clikit import ConfigOpt, DbOpt, DryRunOpt, JsonOpt, QuietOpt

    app = typer.Typer(help="Dependency Management agent: outdated and vulnerable packages, upgrades by update type, "
                           "each proven in an isolated copy first.", no_args_is_help=True)

    @app.command("scan")
    def scan(config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, quiet: QuietOpt = False,
             dry_run: DryRunOpt = False,
             target: Annotated[str | None, typer.Option("--target", metavar="NAME",
                                                        help="Scan only this target.")] = None) -> None:
        """Run the Dependency Management agent once: each target's packages against its index and the advisories;
        upgrades proposed by update type and gated by policy (security auto, minor/patch notify, major disabled by
        default). Exit 0 OK, 1 WARNING, 2 CRITICAL (a known vulnerability), 3 UNKNOWN or could not run."""
        raise typer.Exit(deps_scan(config, db, json, quiet, dry_run, target))

    @app.command("show")
    def show(package: Annotated[str, typer.Argument(help="Distribution name, e.g. requests.")],
             config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False) -> None:
        """Show PACKAGE in every python target: installed version, the index's newer versions with their update
        type, known advisories and the last proof's output. Exit 0, 1 when no target has it, 3 for a bad name."""
        raise typer.Exit(deps_show(package, config, db, json))

    return [("deps", app)]
