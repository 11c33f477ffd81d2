"""Message building (merge tags, tracking, List-Unsubscribe, DKIM) and the SMTP/maildir transports."""
