"""DbActor: the only owner of the SQLite store (a leaf: it asks no one)."""

from __future__ import annotations

import logging

from actors.messages import OpenStore, Persist, PrepareStore, ReplaceRows
from actors.serving import ServingActor
from db.store import Store

log = logging.getLogger(__name__)


class DbActor(ServingActor):
    """Owns config.db; every SQLite call runs on this actor's thread.

    Accepts: OpenStore, PrepareStore, Persist, ReplaceRows.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._store = Store(path)

    def receive(self, message: object) -> object:
        """Dispatch one message."""
        match message:
            case Persist():
                self._store.apply(message.change, message.earlier)
                return None
            case ReplaceRows(delete_inodes=delete, rows=rows):
                self._store.replace_rows(delete, rows)
                return None
            case OpenStore():
                return self._store.open()
            case PrepareStore():
                self._store.prepare()
                return None
            case _:
                return self.unexpected(message)

    def on_stop(self) -> None:
        """Close the connection (the last close checkpoints the WAL)."""
        self._store.close()
        log.debug("database %s closed", self._store.path)
