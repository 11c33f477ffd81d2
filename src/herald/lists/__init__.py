"""Categories (folders), lists and list subscriptions."""
