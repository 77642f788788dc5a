"""Schema changes as action kinds: `schema.migrate` (make a table match its declared schema) and `schema.revert`
(its inverse, which rollback proposes). Both are `approve` by default (the guarded family `schema.*`).

The preview shows the exact statements and their inverse. Apply runs them in one transaction only while the
table's definition still hashes to the one planned; the values of columns the change loses (a dropped column, a
lossy type change, allowed by the dataset's `allow_data_loss`) are read in the same transaction and kept in the
action's record, and the revert puts them back by rowid or primary key.

Parameters (schema.migrate): dataset, source (sqlite | postgres), db (file or masked DSN), table, definition
(digest), differences, statements, inverse, rebuild, key, save, lossy. schema.revert: undo, the same source
keys, statements (the inverse), expect (the digest the migration left), restore {column: [[key, value]]}.
"""

from zenctl.agents.data_validator import migrate
from zenctl.agents.data_validator.kinds.repair import db_context, where
from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.untrusted import line


def _sql(statements: list[str]) -> str:
    return "; ".join(statements)


@register
class Migrate(ActionKind):
    name = "schema.migrate"
    summary = "Change a database table to match its declared schema (DDL in one transaction; approve by default)."
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        text = (f"migrate {where(p)} ({'; '.join(p['differences'])}): "
                + ("SQLite table rebuild: " if p["rebuild"] else "") + f"{_sql(p['statements'])}; inverse: "
                f"{_sql(p['inverse'])}")
        if p["lossy"]:
            text += f"; loses data (allowed): {'; '.join(p['lossy'])}, values kept for rollback"
        return text

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        try:
            done = migrate.run(p, proposal.context.get("dsn"), p["statements"], p["definition"], save=p["save"])
        except migrate.MigrationError as exc:
            raise ActionFailed(line(str(exc))) from None
        kept = sum(len(v) for v in done["saved"].values())
        return Applied(f"migrated {where(p)}: {len(p['statements'])} statement(s)"
                       + (f"; {kept} value(s) kept for rollback" if kept else ""),
                       {"saved": done["saved"], "definition": done["definition"]})

    def verify(self, proposal: Proposal) -> str | None:
        return None  # the transaction committed every statement or none

    def undo(self, action: dict, check: bool = True) -> Proposal | str | None:
        p, before = action["params"], action.get("before") or {}
        if "definition" not in before:
            return (f"action {action['id']} recorded no definition to check against; revert by hand: "
                    f"{_sql(p['inverse'])}")
        params = {"undo": action["id"], "dataset": p["dataset"], "source": p["source"], "db": p["db"],
                  "table": p["table"], "key": p["key"], "statements": p["inverse"], "expect": before["definition"],
                  "restore": before.get("saved") or {}}
        return Proposal("schema.revert", action["target"], params,
                        f"rollback of {action['id']} (schema.migrate {action['target']}, {action['finished']})",
                        f"rollback:{action['id']}", context=db_context(p))


@register
class Revert(ActionKind):
    name = "schema.revert"
    summary = "Undo a schema change: run its inverse DDL in one transaction and put back the values it kept."
    irreversible_why = "migrate again instead"

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        kept = sum(len(v) for v in p["restore"].values())
        return (f"undo {p['undo']}: in {where(p)} run {_sql(p['statements'])}"
                + (f"; put back {kept} value(s) of {', '.join(p['restore'])}" if kept else ""))

    def apply(self, proposal: Proposal) -> Applied:
        p = proposal.params
        try:
            migrate.run(p, proposal.context.get("dsn"), p["statements"], p["expect"], restore=p["restore"])
        except migrate.MigrationError as exc:
            raise ActionFailed(line(str(exc))) from None
        return Applied(self.preview(proposal).replace("undo", "undid", 1))

    def verify(self, proposal: Proposal) -> str | None:
        return None
