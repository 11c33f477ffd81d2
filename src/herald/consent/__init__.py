"""The consent engine: address state machine, ledger, topics, eligibility. The heart of Herald."""
