"""Action kinds: the only code that changes the system.

An agent proposes (`Proposal`); the runtime looks up the kind here and calls `preview` (dry-run), or `apply` then
`verify`. Each kind reports what it changed and what was there before, so it can be audited and undone.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Proposal:
    """An action an agent wants: which kind, on what, with which parameters, and why."""

    kind: str
    target: str
    params: dict[str, Any]
    reason: str
    check: str = ""  # the finding this action would repair
    # what apply and verify need that is not part of the stored, hashed plan: live objects (a service's config),
    # values that change every run, secrets (a DSN with its password); never written anywhere
    context: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Applied:
    """What `apply` did: a message in the same words as the preview, and the state before (for undo)."""

    message: str
    before: dict[str, Any] = field(default_factory=dict)


class ActionFailed(Exception):
    """The action could not be applied or did not verify; the message says why."""


class ActionKind(ABC):
    """One kind of change. Subclasses set `name` and implement preview, apply and verify."""

    name: ClassVar[str]
    summary: ClassVar[str]
    reversible: ClassVar[bool] = False  # True when rollback can restore what `changes` names
    irreversible_why: ClassVar[str] = "it changes nothing zenctl can snapshot"

    @abstractmethod
    def preview(self, proposal: Proposal) -> str:
        """The exact change, in the words the real run reports, without changing anything."""

    @abstractmethod
    def apply(self, proposal: Proposal) -> Applied:
        """Make the change; raise ActionFailed with a one-line reason when it cannot."""

    @abstractmethod
    def verify(self, proposal: Proposal) -> str | None:
        """None when the change holds, else what is still wrong."""

    def changes(self, proposal: Proposal) -> list[str]:
        """Paths `apply` may change, created ones included: the runtime snapshots them first, for rollback.
        A kind that changes no file returns none, and unless `reversible` it cannot be rolled back."""
        return []

    def undo(self, action: dict[str, Any], check: bool = True) -> "Proposal | str | None":
        """For a kind that undoes itself from its own before-data instead of snapshots (a log rotation is renames,
        not copies): the proposal that puts things back, or why it cannot (`check`: look at the files now; a
        dry-run that previewed a newer undo of the same target does not). `action` is the stored row (params,
        before). None: rollback restores the snapshots."""
        return None


_REGISTRY: dict[str, ActionKind] = {}


def register(cls: type[ActionKind]) -> type[ActionKind]:
    """Class decorator adding a kind to the registry."""
    _REGISTRY[cls.name] = cls()
    return cls


# Core's own kinds: rollback's restore and the crontab writers of `zenctl schedule`.
CORE_KINDS = {
    "snapshot.restore": "zenctl.core.restore_kind",
    "cron.crontab": "zenctl.core.cron_kinds",
    "cron.file": "zenctl.core.cron_kinds",
}


def _module_of(name: str) -> str | None:
    """The module that registers kind `name`: core's, or the agent's that declares it in the registry."""
    from zenctl.core import registry

    if name in CORE_KINDS:
        return CORE_KINDS[name]
    spec = registry.owner(name)
    return spec.kinds[name] if spec else None


def get_kind(name: str) -> ActionKind:
    """The kind named `name`, its module imported on first use; KeyError for a kind nobody declares."""
    if name not in _REGISTRY:
        module = _module_of(name)
        if module:
            import importlib

            importlib.import_module(module)
    if name not in _REGISTRY:
        raise KeyError(f"unknown action kind {name!r}")
    return _REGISTRY[name]


def known_kinds() -> set[str]:
    """Every kind core and the agents declare (without importing them)."""
    from zenctl.core import registry

    return set(CORE_KINDS) | {kind for spec in registry.specs() for kind in spec.kinds}
