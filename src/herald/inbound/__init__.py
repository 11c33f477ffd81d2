"""Inbound bounces (RFC 3464 DSN) and complaints (RFC 5965 ARF)."""
