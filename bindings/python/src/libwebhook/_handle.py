"""A library object owned by a Python object: freed exactly once, never while a
call on it is still running in another thread, and never in a forked child.

Every call borrows the pointer with acquire()/release(); close() marks the
handle closed at once (new calls raise StateError) and waits for the calls in
progress to return before freeing. The calls that can wait (drain,
next_result) do so in short slices, so that wait is short.

After fork() the child has a copy of the parent's memory but none of its
threads: freeing there would join threads that do not exist, so in a child the
handle is dropped without a call (the copy goes away with the process).
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Optional

from .errors import StateError


class Handle:
    __slots__ = ("ptr", "what", "pid", "_free", "_users", "_lock", "_cv", "closed")

    def __init__(self, ptr: int, free: Callable[[int], None], what: str) -> None:
        self.ptr: int = ptr
        self.what = what
        self.pid = os.getpid()
        self._free: Optional[Callable[[int], None]] = free
        self._users = 0
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self.closed = False

    # Every call goes through these two: a plain lock, and a notify only when
    # close() may be waiting.
    def acquire(self) -> int:
        with self._lock:
            if self.closed:
                raise StateError(f"{self.what} is closed")
            self._users += 1
            return self.ptr

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self.closed:
                self._cv.notify_all()

    def in_child(self) -> bool:
        """True in a process forked from the one that created the object."""
        return os.getpid() != self.pid

    def close(self, before_free: Optional[Callable[[int], None]] = None) -> bool:
        """Mark closed, wait for the calls in progress, then before_free (stop,
        say) and free. Returns False when it was closed already."""
        with self._cv:
            if self.closed:
                return False
            self.closed = True
        if self.in_child():
            self._free = None
            return True
        if before_free is not None:
            before_free(self.ptr)
        with self._cv:
            while self._users:
                self._cv.wait()
        free, self._free = self._free, None
        if free is not None:
            free(self.ptr)
        return True
