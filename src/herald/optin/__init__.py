"""Double opt-in: automation rules, opt-in emails and one-click confirmation."""
