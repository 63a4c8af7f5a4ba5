"""The in-memory backend (tests, benchmarks, library use without a file)."""

from loopwise.storage.memory.storage import MemoryStorage, MemoryUnitOfWork

__all__ = ["MemoryStorage", "MemoryUnitOfWork"]
