"""Contacts, contact types and segments."""
