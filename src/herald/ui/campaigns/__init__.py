"""Campaign pages of the admin UI: single sends, messages, opt-in rules and the outbox."""

from herald.ui.campaigns.endpoints import router

__all__ = ["router"]
