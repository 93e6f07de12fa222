"""What Symphony remembers about a stack: resources, revisions, the lock and the journal."""

from symphony.state.lock import StackLock
from symphony.state.store import Deployed, Resource, Revision, StateStore

__all__ = ["Deployed", "Resource", "Revision", "StackLock", "StateStore"]
