"""A file-like COPY source whose text is encoded on a second thread while psycopg2 sends it.

With one thread, Python stopped encoding whenever the socket to the server was full, and the
server idled whenever Python encoded the next piece, so a write cost encoding plus storing.
psycopg2 releases the GIL while it sends a piece, so a producer thread can encode the next
pieces meanwhile: on 2 cores a write then costs about what the server needs to store the
rows (``make bench``'s persistence figures compare it with a COPY of pre-built text).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator

#: Pieces encoded ahead of the one being sent: enough to keep the server busy, little memory.
_AHEAD = 4


class EncodingCopyStream(io.TextIOBase):
    """Feeds ``cursor.copy_expert`` from an iterator of text pieces, run on its own thread.

    An exception raised while making a piece (a pair that cannot be stored) ends the stream:
    ``read`` raises it, which aborts the COPY, and psycopg2 reports that as its own error, so
    the original is kept in ``error``. Use it as a context manager: leaving it (also on an
    error or a task timeout) stops the producer thread.
    """

    def __init__(self, pieces: Iterator[str]) -> None:
        self.error: Exception | None = None
        self._ended = False
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=_AHEAD)  # None: the end
        self._stopped = threading.Event()
        self._producer = threading.Thread(target=self._produce, args=(pieces,), name="copy-encoder", daemon=True)
        self._producer.start()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:  # noqa: ARG002 - psycopg2 sends whatever length it gets
        if self._ended:
            return ""
        piece = self._queue.get()
        if piece is None:
            self._ended = True
            if self.error is not None:
                raise self.error
            return ""
        return piece

    def close(self) -> None:
        self._stopped.set()
        self._producer.join()
        super().close()

    def _produce(self, pieces: Iterator[str]) -> None:
        try:
            for piece in pieces:
                if not self._offer(piece):
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            self.error = exc
        self._offer(None)

    def _offer(self, item: str | None) -> bool:
        """Queue ``item`` unless the stream was closed meanwhile (the COPY failed or was cancelled)."""
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False
