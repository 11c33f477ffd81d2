"""Public pages reached from emails: unsubscribe, preferences, opt-in confirmation, tracking."""
