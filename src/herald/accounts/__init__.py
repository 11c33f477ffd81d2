"""Accounts (tenants), their users, and the credentials each API dialect authenticates with."""
