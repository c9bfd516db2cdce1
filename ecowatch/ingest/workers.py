"""Probing batches of files in worker processes, in order, one batch ahead of the writer.

Each batch is cut into chunks that go to a pool of ``workers`` processes; results come back
in input order. While the caller writes batch *k*, the pool already works on batch *k + 1*; no
more than two batches are ever in flight, so memory does not grow with the number of files.
``workers=0`` probes in the calling process.

The pool is :class:`concurrent.futures.ProcessPoolExecutor` (``multiprocessing`` underneath)
in the ``spawn`` context, for two reasons:

* a worker that dies (killed for memory, a crash inside a decoder) makes the executor raise
  ``BrokenProcessPool``; ``multiprocessing.Pool.imap`` would instead wait for the lost result
  forever and hang the nightly run;
* ``spawn`` starts clean interpreters: no inherited database connections, locks or threads of
  the caller (progress bars, tracking clients), which ``fork`` would copy mid-state.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from ecowatch.errors import IngestError
from ecowatch.ingest.probe import FileFacts, probe_file
from ecowatch.ingest.scan import ScannedFile

# Batches submitted to the pool ahead of the one being written.
LOOKAHEAD_BATCHES = 1
# Largest chunk of files sent to a worker in one message.
MAX_CHUNK = 32


def probe_chunk(files: list[ScannedFile]) -> list[FileFacts]:
    """Probe a chunk of files in a worker (see :func:`~ecowatch.ingest.probe.probe_file`)."""
    return [probe_file(f) for f in files]


class Prober:
    """Probe batches of files with ``workers`` processes (0 = in-process).

    Use as a context manager; the workers are stopped on exit.

    Args:
        workers: number of worker processes, >= 0.
        batch_size: the caller's batch size, used to size the chunks.
    """

    def __init__(self, workers: int, batch_size: int) -> None:
        self.workers = workers
        # Chunks small enough that every worker gets several per batch, big enough to amortise IPC.
        self.chunksize = max(1, min(MAX_CHUNK, batch_size // max(1, workers * 4)))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Prober:
        if self.workers > 0:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)
            self._pool = None

    def probe_batches(
        self, batches: Iterator[tuple[int, list[ScannedFile]]]
    ) -> Iterator[tuple[int, list[ScannedFile], list[FileFacts]]]:
        """Probe each batch's files, yielding batches in input order with their facts.

        Args:
            batches: ``(files_already_known, new_files)`` per batch; the count passes through.

        Yields:
            ``(files_already_known, new_files, facts)`` with ``facts[i]`` for ``new_files[i]``.

        Raises:
            IngestError: a worker process died or could not start.
        """
        if self._pool is None:
            for known, files in batches:
                yield known, files, [probe_file(f) for f in files]
            return
        pending: deque[tuple[int, list[ScannedFile], list[Future[list[FileFacts]]]]] = deque()
        for known, files in batches:
            chunks = [files[i : i + self.chunksize] for i in range(0, len(files), self.chunksize)]
            pending.append((known, files, [self._pool.submit(probe_chunk, chunk) for chunk in chunks]))
            if len(pending) > LOOKAHEAD_BATCHES:
                yield self._collect(*pending.popleft())
        while pending:
            yield self._collect(*pending.popleft())

    @staticmethod
    def _collect(
        known: int, files: list[ScannedFile], futures: list[Future[list[FileFacts]]]
    ) -> tuple[int, list[ScannedFile], list[FileFacts]]:
        facts: list[FileFacts] = []
        for future in futures:
            try:
                facts.extend(future.result())
            except BrokenProcessPool as exc:
                raise IngestError(
                    f"an ingest worker process died while probing the files from {files[len(facts)].relpath} on "
                    "(killed for memory, a decoder crash, or it could not start). Committed batches are kept: "
                    "re-run to resume; with ingest.workers: 0 a failing file shows in the traceback."
                ) from exc
        return known, files, facts
