"""Outgoing event notifications: native signed JSON and the Skycore XML postback."""
