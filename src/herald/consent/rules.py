"""The address state machine, as pure data: which consent transitions are allowed from which state.

The AllClients rules are the baseline for every path:
- opt-in only from unknown (or pending, mid double opt-in): an opt-out, bounce or spam report is never
  overwritten by an opt-in;
- opt-out and bounce only from unknown, pending or opted in;
- a spam report from any state, and never left again.
"""

from __future__ import annotations

UNKNOWN, PENDING, OPTED_IN, OPTED_OUT, BOUNCED, SPAM_REPORTED = (
    "unknown",
    "pending",
    "opted_in",
    "opted_out",
    "bounced",
    "spam_reported",
)
STATUSES = (UNKNOWN, PENDING, OPTED_IN, OPTED_OUT, BOUNCED, SPAM_REPORTED)

# States that stop marketing mail (a temporary opt-out only until its date).
SUPPRESSING = (OPTED_OUT, BOUNCED, SPAM_REPORTED)

ALLOWED_FROM: dict[str, frozenset[str]] = {
    PENDING: frozenset({UNKNOWN}),
    OPTED_IN: frozenset({UNKNOWN, PENDING}),
    OPTED_OUT: frozenset({UNKNOWN, PENDING, OPTED_IN}),
    BOUNCED: frozenset({UNKNOWN, PENDING, OPTED_IN}),
    SPAM_REPORTED: frozenset(STATUSES),
}


def is_allowed(current: str, target: str) -> bool:
    """May an address in `current` move to `target`?"""
    return current in ALLOWED_FROM.get(target, frozenset())
