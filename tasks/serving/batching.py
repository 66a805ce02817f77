"""Dynamic batching: one worker thread owns the model; requests that arrive within `max_wait_ms` of the first
one waiting (or that queued while the model was busy) are handed to it together, at most `max_batch` at once.

The worker is also what makes serving safe without batching (max_batch 1, max_wait 0): a runtime is not
thread-safe, and every request reaches it through this one thread. The queue is bounded (`max_queue`): a
request beyond it is refused at once (`QueueFull`, a 503) instead of growing memory without end.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than `max_queue`."""


@dataclass
class Job:
    """One generation request waiting for the model."""

    ids: list[int]
    max_tokens: int
    temperature: float = 0.0
    seed: int = 0
    arrived: float = field(default_factory=time.perf_counter)
    future: Future = field(default_factory=Future)
    started: float = 0.0
    """When its batch reached the model (perf_counter seconds); arrived..started is time queued."""


class Batcher:
    """Feeds `serve(jobs)` (which sets each job's future) from a bounded queue, on one worker thread."""

    def __init__(self, serve: Callable[[list[Job]], None], max_batch: int, max_wait_ms: float, max_queue: int):
        if max_batch < 1 or max_wait_ms < 0 or max_queue < 1:
            raise ValueError(f"bad batching knobs: max_batch={max_batch}, max_wait_ms={max_wait_ms}, "
                             f"max_queue={max_queue}")
        self.serve, self.max_batch, self.max_wait_s = serve, max_batch, max_wait_ms / 1000.0
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._loop, name="greenlane-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future:
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are already waiting (serve.max_queue)") from None
        return job.future

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def close(self, timeout_s: float = 30.0) -> None:
        """Finish the batch in progress, fail the requests still queued, stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _collect(self, first: Job) -> tuple[list[Job], bool]:
        """`first` plus what arrives by first.arrived + max_wait (or is already queued), up to max_batch;
        and whether the stop sentinel was met."""
        jobs = [first]
        deadline = first.arrived + self.max_wait_s
        while len(jobs) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs, stopping = self._collect(first)
            started = time.perf_counter()
            for job in jobs:
                job.started = started
            try:
                self.serve(jobs)
            except Exception as err:  # the requests fail (500 JSON), the server lives on
                log.exception("generation failed for a batch of %d", len(jobs))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)
        while True:  # stopped: whatever is still queued will not be served
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and not job.future.done():
                job.future.set_exception(RuntimeError("server shutting down"))
