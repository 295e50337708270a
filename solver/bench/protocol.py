"""Messages between a run's child process and the process that watches it.

Each message is a ``(kind, payload)`` pair sent as an 8-byte big-endian length and a pickle, over
a pipe of its own (the child's stdout and stderr stay free for a planner's chatter). The child
sends, in order: ``loaded`` (the instance's size), ``planning`` (the planner starts: its time
limit runs from here), ``planned`` (wall time), ``done`` (the row's fields); or ``failed`` (the run
could not go on: unreadable instance...).

Examples
--------
>>> import os
>>> r, w = os.pipe()
>>> send(w, "loaded", {"ops": 3})
>>> reader = FrameReader(r)
>>> reader.read(1.0)
('loaded', {'ops': 3})
>>> os.close(w); reader.read(1.0) is EOF
True
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import time
from typing import Any

_LEN = struct.Struct(">Q")

#: Returned by :meth:`FrameReader.read` when the other end closed the pipe.
EOF = ("eof", None)


def send(fd: int, kind: str, payload: Any = None) -> None:
    """Write one message to the pipe ``fd`` (blocking until all of it is written)."""
    body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_LEN.pack(len(body)) + body)
    while data:
        n = os.write(fd, data)
        data = data[n:]


class FrameReader:
    """Reads messages from a pipe with a timeout (one reader per pipe; not thread-safe)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.closed = False

    def _frame(self) -> tuple[str, Any] | None:
        if len(self.buf) < _LEN.size:
            return None
        (n,) = _LEN.unpack_from(self.buf)
        if len(self.buf) < _LEN.size + n:
            return None
        body = bytes(self.buf[_LEN.size:_LEN.size + n])
        del self.buf[:_LEN.size + n]
        return pickle.loads(body)

    def read(self, timeout: float) -> tuple[str, Any] | None:
        """The next message, :data:`EOF` when the writer closed the pipe, or None after ``timeout``
        seconds without a whole message."""
        end = time.monotonic() + max(timeout, 0.0)
        while True:
            msg = self._frame()
            if msg is not None:
                return msg
            if self.closed:
                return EOF
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                self.closed = True
            else:
                self.buf += chunk
