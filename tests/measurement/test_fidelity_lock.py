"""The fidelity reference cache's lock: a second benchmark task waits, then reuses what the first wrote."""

from __future__ import annotations

import threading

import numpy as np
from filelock import FileLock

from tasks.measurement import fidelity


def test_second_task_waits_for_the_lock_and_reuses_the_reference(tmp_path, monkeypatch):
    base, examples, task = tmp_path / "base", [{"text": "a b c"}], "sentiment"
    cache = tmp_path / "reference.npz"
    ref = fidelity.Reference(np.arange(3), np.array([0, 3]), np.zeros((3, fidelity.TOP_K), dtype=np.int64),
                             np.zeros((3, fidelity.TOP_K), dtype=np.float32),
                             fidelity.reference_key(base, examples, task), np.ones(1, dtype=np.int8), "cpu")
    built = []
    monkeypatch.setattr(fidelity, "build_reference", lambda *a, **k: built.append(a))
    got = []
    with FileLock(cache.with_name(cache.name + ".lock")):  # the first task, building
        waiter = threading.Thread(target=lambda: got.append(fidelity.load_or_build_reference(base, examples, task, cache)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive()  # blocked on the lock, not building a second reference
        ref.save(cache)
    waiter.join(10)
    assert not waiter.is_alive() and not built
    assert got[0].meta == ref.meta and np.array_equal(got[0].token_ids, ref.token_ids)
