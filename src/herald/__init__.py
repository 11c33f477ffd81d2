"""Herald: a self-hosted, consent-first email marketing platform."""

__version__ = "0.1.0"
