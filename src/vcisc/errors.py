"""Domain errors. Services raise these; the API maps each to one HTTP status in one handler.

Messages may reach the caller, so they never name anything the caller may not know exists.
"""

from __future__ import annotations

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound"]


class DomainError(Exception):
    status = 400
    code = "bad-request"

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"detail": self.message, "code": self.code, **self.extra}


class NotFound(DomainError):
    """Absent, or present but not for this caller: the two are indistinguishable on purpose."""

    status = 404
    code = "not-found"


class Forbidden(DomainError):
    """The caller may see the object but not do this to it (e.g. lacks a role)."""

    status = 403
    code = "forbidden"


class Conflict(DomainError):
    """Not allowed in the current state; ``allowed`` lists what is."""

    status = 409
    code = "conflict"


class Invalid(DomainError):
    """Input that is well-formed but wrong; ``field`` names it."""

    status = 422
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
