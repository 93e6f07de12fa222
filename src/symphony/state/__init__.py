"""What Symphony remembers about a stack: resources, revisions, the lock and the journal."""

from symphony.state.lock import StackLock
from symphony.state.store import Resource, Revision, StateStore

__all__ = ["Resource", "Revision", "StackLock", "StateStore"]
