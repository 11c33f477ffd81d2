"""The composition root's product: settings, engine, sessions and keys, built once per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from herald.db.engine import make_engine, make_sessionmaker
from herald.security import Cipher, TokenSigner
from herald.settings import Settings


@dataclass
class Container:
    """Everything a request, a CLI command or the worker needs, with no global state."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: Cipher
    signer: TokenSigner
    hash_key: bytes
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings | None = None) -> Container:
        """Wire a container from settings (environment variables by default)."""
        settings = settings or Settings()
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            cipher=Cipher(settings.derive_key("encryption")),
            signer=TokenSigner(settings.derive_key("signing")),
            hash_key=settings.derive_key("address-hash"),
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on success and rolls back on error (for the worker and CLI)."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
