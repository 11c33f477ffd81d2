"""Typed domain errors raised by services; every edge maps them to its own representation.

Tree:
    HeraldError
      NotFound          the object does not exist for this account (never says whether it exists elsewhere)
      NotAllowed        a transition or action refused in the current state (carries current_status)
      Invalid           bad input (carries the field name and a reason)
      Conflict          would break a uniqueness rule
      RateLimited       too many requests or emails in a window
      Forbidden         the caller may not touch this object (permissions within an account)
      Unauthorized      missing or wrong credentials
"""

from __future__ import annotations


class HeraldError(Exception):
    """Base of every error a service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(HeraldError):
    """The object does not exist in the caller's account."""

    def __init__(self, what: str, ident: object = None) -> None:
        super().__init__(f"{what} not found" if ident is None else f"{what} {ident} not found")
        self.what = what
        self.ident = ident


class NotAllowed(HeraldError):
    """Refused in the current state; `current_status` says which state refused it."""

    def __init__(self, message: str, *, current_status: str | None = None) -> None:
        super().__init__(message)
        self.current_status = current_status


class Invalid(HeraldError):
    """Bad input for one field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(HeraldError):
    """The change would break a uniqueness rule."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimited(HeraldError):
    """Too many requests or emails in a window."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(HeraldError):
    """The caller is authenticated but may not touch this object."""


class Unauthorized(HeraldError):
    """Missing or wrong credentials."""
