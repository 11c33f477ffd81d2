"""Senders, design templates and email messages."""
