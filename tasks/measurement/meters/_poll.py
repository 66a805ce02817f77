"""Integrating sampled power over a window, shared by meters without an energy counter.

Jetson rails and old NVIDIA GPUs report instantaneous power only, so energy is
the trapezoid-rule integral of samples taken in a background thread. The clock
and the threading are parameters so tests can drive samples by hand.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class PowerPoller:
    """Samples `read_power_w()` (watts per channel) every `poll_s` and integrates to joules."""

    def __init__(
        self,
        read_power_w: Callable[[], dict[str, float]],
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        threaded: bool = True,
    ):
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0 seconds, got {poll_s}")
        self.read_power_w = read_power_w
        self.poll_s = poll_s
        self.clock = clock
        self.threaded = threaded
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._reset()

    def _reset(self) -> None:
        self.energy_j: dict[str, float] = {}
        self.samples = 0
        self.max_gap_s = 0.0
        self._t0 = self._last_t = None
        self._last_w: dict[str, float] = {}

    def start(self) -> None:
        self._reset()
        self._error = None
        self.sample()
        if self.threaded:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="greenlane-power-poll", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        # Event.wait doubles as the sleep, so stop() does not wait out a whole period.
        while not self._stop.wait(self.poll_s):
            try:
                self.sample()
            except BaseException as err:  # surfaced by stop(); a silent gap would under-count
                self._error = err
                return

    def sample(self) -> None:
        """Read power once and add the trapezoid since the previous sample."""
        watts = self.read_power_w()
        t = self.clock()
        with self._lock:
            if self._last_t is not None:
                dt = t - self._last_t
                self.max_gap_s = max(self.max_gap_s, dt)
                for channel, w in watts.items():
                    prev = self._last_w.get(channel, w)
                    self.energy_j[channel] = self.energy_j.get(channel, 0.0) + 0.5 * (prev + w) * dt
            else:
                self._t0 = t
                self.energy_j = {channel: 0.0 for channel in watts}
            self._last_t, self._last_w = t, watts
            self.samples += 1

    def stop(self) -> tuple[dict[str, float], float]:
        """Take a final sample and return (joules per channel, duration in seconds)."""
        if self._t0 is None:
            raise RuntimeError("PowerPoller.stop() called before start()")
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise RuntimeError(f"power polling failed mid-window: {self._error}") from self._error
        self.sample()
        return dict(self.energy_j), self._last_t - self._t0
