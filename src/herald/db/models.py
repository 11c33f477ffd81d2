"""Imports every model module so `Base.metadata` knows all tables (for Alembic and tests)."""

from __future__ import annotations

from herald.accounts import models as accounts_models
from herald.consent import models as consent_models
from herald.contacts import models as contacts_models
from herald.db.base import Base
from herald.inbound import models as inbound_models
from herald.jobs import models as jobs_models
from herald.lists import models as lists_models
from herald.optin import models as optin_models
from herald.sends import models as sends_models
from herald.templates import models as templates_models
from herald.webhooks import models as webhooks_models

__all__ = [
    "Base",
    "accounts_models",
    "consent_models",
    "contacts_models",
    "inbound_models",
    "jobs_models",
    "lists_models",
    "optin_models",
    "sends_models",
    "templates_models",
    "webhooks_models",
]
