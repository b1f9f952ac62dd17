"""What an import did: the per-object errors and warnings every importer reports.

The issue's "Bad input" rule: the caller chooses whether one invalid object rejects the whole
import (:attr:`ImportMode.ATOMIC`) or is skipped while the rest goes in
(:attr:`ImportMode.SKIP_INVALID`); either way every problem is reported with its reason, and
a fatal problem (invalid JSON, a bundle over the limit) rejects the import in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["ImportMode", "ImportReport", "ObjectProblem"]


class ImportMode(StrEnum):
    """What one invalid object does to the rest of the import."""

    #: Any error rejects the whole import: nothing is handed on to be stored.
    ATOMIC = "atomic"
    #: Invalid objects are skipped and reported; the valid ones go in.
    SKIP_INVALID = "skip-invalid"


@dataclass(frozen=True, slots=True)
class ObjectProblem:
    """One object's error (or warning): where it was, which object, and why.

    ``index`` is the object's position in its container (bundle ``objects``, event
    ``Attribute``) counting from 0; ``details`` carries further messages, e.g. stix2-validator's
    own wording for the same fault.
    """

    index: int | None
    object_id: str | None
    reason: str
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"#{self.index}" if self.index is not None else "bundle"
        who = f" {self.object_id}" if self.object_id else ""
        return f"{where}{who}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The outcome of one import: counts, errors, warnings, and whether it was rejected."""

    mode: ImportMode
    seen: int
    accepted: int
    errors: tuple[ObjectProblem, ...] = ()
    warnings: tuple[ObjectProblem, ...] = ()
    #: Set when the import as a whole failed (bad JSON, over a limit, not a bundle/event).
    fatal: str | None = None
    skipped: tuple[ObjectProblem, ...] = field(default=())

    def __post_init__(self) -> None:
        # Skipping is what the mode does to every error: each reader need not say it again.
        if self.mode is ImportMode.SKIP_INVALID and self.fatal is None and not self.skipped:
            object.__setattr__(self, "skipped", self.errors)

    @property
    def rejected(self) -> bool:
        """True when nothing may be stored: a fatal error, or any error in atomic mode."""
        return self.fatal is not None or (self.mode is ImportMode.ATOMIC and bool(self.errors))
