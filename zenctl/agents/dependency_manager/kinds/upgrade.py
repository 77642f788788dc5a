"""Python upgrades: prove, snapshot the exact freeze, upgrade in place, verify, put the freeze back on failure.

One class per update type (`deps.upgrade_security|patch|minor|major`: each has its own policy mode), one body.
apply proves the candidate first (see `prove`) and refuses when the proof fails; then it keeps the target's
exact freeze (in the action's before-data, and as a file in `<state>.deps/freezes/` for recovery by hand),
installs only the named `name==version` pins with pip or uv against the target's interpreter (every other
installed distribution held at its version by a constraints file, so only new dependencies may be added), and
verifies: versions installed, no new `pip check` problem, every top-level module of the upgraded distributions
imports. When that fails, the previous versions are put back at once. `zenctl rollback ID` is `deps.restore`:
the exact previous versions reinstalled with --no-deps, and what the upgrade added removed.

Parameters (from the agent): target, python, changes [{name, from, to}], index_url, extra_index_urls, test
{argv, cwd, timeout}, proof_timeout, constraints, store, installer. See `prove.Target`.
"""

import os
import tempfile
from pathlib import Path

from zenctl.agents.dependency_manager import prove
from zenctl.agents.dependency_manager.prove import Change, ProofError, Target
from zenctl.core.actions import ActionFailed, ActionKind, Applied, Proposal, register
from zenctl.core.untrusted import line

INSTALL_TIMEOUT = 900.0  # seconds for the in-place install (and again for putting the freeze back)


def _with_secrets(proposal: Proposal) -> dict:
    """The parameters with the index URLs of the proposal's context, which keep their credentials (the stored
    parameters do not; a rollback has no context, and pip and uv then take credentials from ~/.netrc)."""
    secret = {k: proposal.context[k] for k in ("index_url", "extra_index_urls") if proposal.context.get(k)}
    return {**proposal.params, **secret}


def _parse(proposal: Proposal) -> tuple[Target, list[Change]]:
    try:
        return Target.from_params(proposal.target, _with_secrets(proposal)), prove.parse_changes(
            proposal.params.get("changes"))
    except ProofError as exc:
        raise ActionFailed(f"{exc}; nothing changed") from None


def _store(target: Target) -> Path | None:
    try:
        return prove.ensure_store(target.store) if target.store else None
    except (ProofError, OSError) as exc:
        raise ActionFailed(f"the wheel cache and proof store cannot be used: {exc}; nothing changed") from None


def _shown_changes(params: dict) -> str:
    items = params.get("changes") if isinstance(params.get("changes"), list) else []
    return ", ".join(line(f"{c.get('name')} {c.get('from') or '(new)'} -> {c.get('to')}") for c in items
                     if isinstance(c, dict)) or "(no changes given)"


def _put_back_note(problems: list[str], saved: Path | None) -> str:
    if not problems:
        return "put the previous versions back"
    where = f"; the previous freeze is in {saved}" if saved else ""
    return f"could not put everything back: {problems[0]}{where}"


class Upgrade(ActionKind):
    """The body shared by the four update types."""

    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        try:
            target = Target.from_params(proposal.target, p)
            prove.parse_changes(p.get("changes"))
            steps = "; ".join(prove.steps_planned(target))
            index = f" from {line(target.index_url)}" if target.index_url else ""
        except ProofError as exc:
            return f"upgrade {_shown_changes(p)} in {line(proposal.target)}: refused: {exc}"
        return (f"upgrade {_shown_changes(p)} in {line(target.name)} ({line(target.python)}){index}: prove first "
                f"({steps}); then snapshot the exact freeze, install only those pins, verify (pip check, versions, "
                "imports), and put the freeze back if verification fails")

    def apply(self, proposal: Proposal) -> Applied:
        target, changes = _parse(proposal)
        store = _store(target)
        try:
            freeze = prove.read_freeze(target.python)
        except (ProofError, OSError) as exc:
            raise ActionFailed(f"{exc}; nothing changed") from None
        except Exception as exc:  # a hung or broken interpreter
            raise ActionFailed(f"cannot read {line(target.python)}'s packages: {exc}; nothing changed") from None
        if freeze.externally_managed:
            raise ActionFailed(f"{line(target.python)} is a system Python whose packages its distribution manages "
                               "(PEP 668 EXTERNALLY-MANAGED): upgrade them with apt (a target of type apt), or give "
                               "the application a venv; nothing changed")
        for change in changes:
            current = freeze.dists.get(prove.key(change.name), {}).get("version")
            if current == change.after:
                raise ActionFailed(f"{change.name} is already {change.after}; nothing changed")
            if change.before is not None and current != change.before:
                raise ActionFailed(f"{change.name} is {current or 'not installed'} now, not {change.before}: the "
                                   "scan is out of date; nothing changed")
        if store:
            earlier = prove.proof_record(store, target.name, changes)
            if earlier and not earlier.get("ok") and earlier.get("freeze_sha256") == freeze.digest():
                raise ActionFailed(f"{', '.join(c.pin for c in changes)} failed its proof on {earlier.get('started')} "
                                   f"({earlier.get('failed_step')}: {line(str(earlier.get('reason')))[:300]}); not "
                                   "tried again until a newer version appears; nothing changed")
        try:
            proof = prove.prove(target, changes, freeze)
        except ProofError as exc:
            raise ActionFailed(f"cannot prove {', '.join(c.pin for c in changes)}: {exc}; nothing changed") from None
        if not proof.ok:
            raise ActionFailed(f"proof failed at {proof.failed_step}: {line(proof.reason)[:400]}; not applied "
                               f"('zenctl deps show {changes[0].name}' has its output)")
        installer = prove.installer_for(target, store / "cache" if store else None)
        baseline = prove.check_problems(installer.check(target.python, 120))
        try:
            saved = prove.save_freeze(store, target.name, freeze, proposal.kind) if store else None
        except OSError as exc:
            raise ActionFailed(f"cannot keep the freeze before the upgrade in {store}: {exc.strerror}; "
                               "nothing changed") from None
        proposal.context["freeze"] = freeze
        try:
            moved = self._install(target, changes, freeze, installer, saved)
            problem = _verify_in_place(target, changes, installer, baseline)
        except ActionFailed:
            raise
        except BaseException:  # an emergency stop or a bug mid-upgrade: the target must not stay half-changed
            _put_back_all(installer, target.python, freeze)
            raise
        if problem:
            problems = _put_back(installer, target.python, _want_back(moved), INSTALL_TIMEOUT)
            raise ActionFailed(f"verification failed: {problem}; {_put_back_note(problems, saved)}")
        steps = ", ".join(s.name for s in proof.steps)
        return Applied(f"upgraded {', '.join(c.describe() for c in changes)} in {line(target.name)} "
                       f"(proved in {proof.seconds:.1f} s: {steps}; verified)",
                       {"python": target.python, "moved": moved, "freeze": freeze.versions(),
                        "freeze_file": str(saved) if saved else None, "installer": installer.name,
                        "proof": {"seconds": proof.seconds, "steps": [s.name for s in proof.steps]}})

    def _install(self, target: Target, changes: list[Change], freeze: prove.Freeze, installer: prove.Installer,
                 saved: Path | None) -> dict[str, list]:
        """Install the pins, every other distribution held where it is; what moved (key -> [name, old, new])."""
        with tempfile.TemporaryDirectory(prefix="zenctl-upgrade-") as work:
            others = os.path.join(work, "constraints.txt")
            with open(others, "w") as handle:
                handle.write("\n".join(freeze.pins(skip={prove.key(c.name) for c in changes})) + "\n")
            ran = installer.install(target.python, [c.pin for c in changes], INSTALL_TIMEOUT,
                                    [others, *target.constraints])
        try:
            after = prove.read_freeze(target.python)
        except (ProofError, OSError) as exc:
            raise ActionFailed(f"after the install, {exc}; the previous freeze is in {saved}") from None
        moved = prove.diff(freeze, after)
        if not ran.ok:
            problems = _put_back(installer, target.python, _want_back(moved), INSTALL_TIMEOUT) if moved else []
            raise ActionFailed(f"the install failed ({'timed out' if ran.code is None else f'exit {ran.code}'}: "
                               f"{prove._last(ran.tail)}); {_put_back_note(problems, saved)}")
        return moved

    def verify(self, proposal: Proposal) -> str | None:
        """The versions still hold (apply verified pip check and imports already); if not, put the freeze back."""
        target, changes = _parse(proposal)
        try:
            now = prove.read_freeze(target.python)
        except (ProofError, OSError) as exc:
            return str(exc)
        wrong = [f"{c.name} is {now.dists.get(prove.key(c.name), {}).get('version', 'not installed')}, not {c.after}"
                 for c in changes if now.dists.get(prove.key(c.name), {}).get("version") != c.after]
        if not wrong:
            return None
        freeze = proposal.context.get("freeze")
        if isinstance(freeze, prove.Freeze):
            store = target.store if target.store and target.store.is_dir() else None
            installer = prove.installer_for(target, store / "cache" if store else None)
            problems = _put_back(installer, target.python, _want_back(prove.diff(freeze, now)), INSTALL_TIMEOUT)
            return f"{'; '.join(wrong)}; {_put_back_note(problems, None)}"
        return "; ".join(wrong)

    def undo(self, action: dict, check: bool = True) -> Proposal | str:
        return restore_proposal(action, check)


def _verify_in_place(target: Target, changes: list[Change], installer: prove.Installer,
                     baseline: set[str]) -> str | None:
    try:
        now = prove.read_freeze(target.python)
    except (ProofError, OSError) as exc:
        return str(exc)
    wrong = [f"{c.name} is {now.dists.get(prove.key(c.name), {}).get('version', 'not installed')}, not {c.after}"
             for c in changes if now.dists.get(prove.key(c.name), {}).get("version") != c.after]
    if wrong:
        return "; ".join(wrong)
    ran = installer.check(target.python, 120)
    new = sorted(prove.check_problems(ran) - baseline)
    if new:
        return "pip check: " + "; ".join(line(p) for p in new[:3])
    names = [now.dists[prove.key(c.name)]["name"] for c in changes]
    with tempfile.TemporaryDirectory(prefix="zenctl-imports-") as work:
        ran, result = prove.import_modules(target.python, names, 120, Path(work))
    problems = prove.import_problems(ran, result, names)
    return "; ".join(problems[:3]) if problems else None


def _put_back(installer: prove.Installer, python: str, want: dict[str, list], timeout: float) -> list[str]:
    """prove.put_back, its own failure (the interpreter stopped answering) one more problem."""
    try:
        return prove.put_back(installer, python, want, timeout)
    except (ProofError, OSError) as exc:
        return [str(exc)]


def _put_back_all(installer: prove.Installer, python: str, freeze: prove.Freeze) -> None:
    """Best effort, bounded: whatever moved since `freeze` goes back (the freeze file stays for a person)."""
    try:
        moved = prove.diff(freeze, prove.read_freeze(python))
        if moved:
            _put_back(installer, python, _want_back(moved), 120)
    except Exception:
        pass


def _want_back(moved: dict[str, list]) -> dict[str, list]:
    """key -> [name, version before] (None: remove it) from what moved."""
    return {k: [name, old] for k, (name, old, _new) in moved.items()}


def restore_proposal(action: dict, check: bool = True) -> Proposal | str:
    """The `deps.restore` that undoes `action` (an upgrade or a restore), or why it cannot."""
    before, p = action.get("before") or {}, action.get("params") or {}
    moved = before.get("moved")
    what = f"{action['id']} ({action['kind']} {action['target']})"
    if not isinstance(moved, dict) or not moved:
        return f"action {what} recorded no versions it changed; nothing to undo"
    python = before.get("python") or p.get("python")
    if check:
        try:
            now = prove.read_freeze(python).versions()
        except (ProofError, OSError, TypeError) as exc:
            return f"not rolling back {what}: {exc}"
        changed = [f"{name} is {now.get(k) or 'not installed'} now, not {new or 'removed'}"
                   for k, (name, _old, new) in sorted(moved.items()) if now.get(k) != new]
        if changed:
            pins = " ".join(f"{name}=={old}" for name, old, _ in moved.values() if old)
            return (f"not rolling back {what}: {changed[0]} as the action left it (changed since); put the previous "
                    f"versions back by hand: {python} -m pip install --no-deps {pins}")
    params = {key: p[key] for key in ("target", "index_url", "extra_index_urls", "store", "installer") if key in p}
    params.update({"undo": action["id"], "python": python,
                   "set": {k: [name, old] for k, (name, old, _new) in moved.items()},
                   "left": {k: [name, new] for k, (name, _old, new) in moved.items()}})
    return Proposal("deps.restore", action["target"], params,
                    f"rollback of {action['id']} ({action['kind']} {action['target']}, {action.get('finished')})",
                    f"rollback:{action['id']}")


@register
class UpgradeSecurity(Upgrade):
    name = "deps.upgrade_security"
    summary = "Upgrade a Python package to the version that fixes a known vulnerability, proven first."


@register
class UpgradePatch(Upgrade):
    name = "deps.upgrade_patch"
    summary = "Upgrade a Python package to a newer patch release, proven first."


@register
class UpgradeMinor(Upgrade):
    name = "deps.upgrade_minor"
    summary = "Upgrade a Python package to a newer minor release, proven first."


@register
class UpgradeMajor(Upgrade):
    name = "deps.upgrade_major"
    summary = "Upgrade a Python package to a new major release (always approved by a person), proven first."


@register
class Restore(ActionKind):
    name = "deps.restore"
    summary = "Put a Python target's previous versions back exactly (rollback of an upgrade): --no-deps pins."
    reversible = True

    def preview(self, proposal: Proposal) -> str:
        p = proposal.params
        items = p.get("set") if isinstance(p.get("set"), dict) else {}
        left = p.get("left") if isinstance(p.get("left"), dict) else {}
        moves = [f"{name} {(left.get(k) or [None, None])[1] or '(absent)'} -> {version or '(removed)'}"
                 for k, (name, version) in sorted(items.items())]
        undo = f"undo {line(str(p.get('undo')))}: " if p.get("undo") else ""
        return (f"{undo}put back {line(', '.join(moves))} in {line(proposal.target)} ({line(str(p.get('python')))}): "
                "exact versions with --no-deps, added packages removed")

    def _want(self, proposal: Proposal) -> tuple[Target, dict[str, list]]:
        p = proposal.params
        try:
            target = Target.from_params(proposal.target, _with_secrets(proposal))
            want = {}
            for k, item in (p.get("set") or {}).items():
                name, version = item
                want[prove.key(prove.valid_name(name))] = [name, None if version is None
                                                           else prove.valid_version(version)]
        except (ProofError, TypeError, ValueError, AttributeError) as exc:
            raise ActionFailed(f"bad restore parameters: {exc}; nothing changed") from None
        if not want:
            raise ActionFailed("nothing to put back")
        return target, want

    def apply(self, proposal: Proposal) -> Applied:
        target, want = self._want(proposal)
        store = target.store if target.store and target.store.is_dir() else None
        if store:
            try:
                prove.ensure_store(store)
            except (ProofError, OSError):
                store = None
        installer = prove.installer_for(target, store / "cache" if store else None)
        try:
            before = prove.read_freeze(target.python)
            saved = prove.save_freeze(store, target.name, before, "deps.restore") if store else None
            problems = _put_back(installer, target.python, want, INSTALL_TIMEOUT)
            after = prove.read_freeze(target.python)
        except (ProofError, OSError) as exc:
            raise ActionFailed(str(exc)) from None
        moved = prove.diff(before, after)
        if problems:
            raise ActionFailed(f"{'; '.join(problems[:3])}" + (f"; the freeze before is in {saved}" if saved else ""))
        shown = ", ".join(f"{name} {old or '(absent)'} -> {new or '(removed)'}" for name, old, new in moved.values())
        return Applied(f"put back {shown or 'nothing (already as recorded)'} in {line(target.name)}",
                       {"python": target.python, "moved": moved, "freeze": before.versions(),
                        "freeze_file": str(saved) if saved else None})

    def verify(self, proposal: Proposal) -> str | None:
        target, want = self._want(proposal)
        try:
            now = prove.read_freeze(target.python).versions()
        except (ProofError, OSError) as exc:
            return str(exc)
        wrong = [f"{name} is {now.get(k) or 'not installed'}, not {version or 'removed'}"
                 for k, (name, version) in want.items() if now.get(k) != version]
        return "; ".join(wrong) or None

    def undo(self, action: dict, check: bool = True) -> Proposal | str:
        return restore_proposal(action, check)

