"""A benchmark's record on disk, with the identity of what was measured, so a retry logs it instead of measuring.

`pipeline.benchmark` measures, then saves the record here before its first MLflow write. If that logging fails
(a tracking outage) and Airflow retries the task, the retry finds the record and logs it: the minutes of
measurement are not lost nor repeated. It is reused only when all of these hold:

- it belongs to this DAG run, variant and target (`identity`), and the variant on disk is the one measured
  (a fingerprint of its metadata file, which names its chain, files and sizes);
- the previous try did not finish: `result.json`, written at the task's very end, is absent. A task cleared
  after it succeeded measures again, as a re-run should.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from tasks.measurement.record import BenchmarkRecord

log = logging.getLogger("greenlane")

RECORD_FILE = "benchmark.json"  # the file tasks.measurement.benchmark.run_benchmark writes
IDENTITY_KEY = "greenlane_identity"  # extra key in that file; BenchmarkRecord.from_dict ignores it
DONE_FILE = "result.json"  # written by pipeline.benchmark once the record is logged


def identity(dag_run_id: str, variant: str, target: str, variant_dir: Path) -> dict:
    from tasks.variants import METADATA

    meta = Path(variant_dir) / METADATA
    return {"dag_run_id": dag_run_id, "variant": variant, "target": target,
            "variant_sha256": hashlib.sha256(meta.read_bytes()).hexdigest() if meta.is_file() else None}


def save(out_dir: Path, record: BenchmarkRecord, ident: dict) -> Path:
    """Write the record with its identity, atomically: a task killed mid-write leaves the old file or none."""
    path = Path(out_dir) / RECORD_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**record.to_dict(), IDENTITY_KEY: ident}, indent=2, default=str))
    os.replace(tmp, path)
    return path


def reusable(out_dir: Path, ident: dict) -> BenchmarkRecord | None:
    """The record an unfinished earlier try of this same task measured, or None (then measure)."""
    path = Path(out_dir) / RECORD_FILE
    if not path.is_file() or (Path(out_dir) / DONE_FILE).is_file() or ident["variant_sha256"] is None:
        return None
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or saved.get(IDENTITY_KEY) != ident:
            return None
        return BenchmarkRecord.from_dict(saved)
    except Exception as err:  # unreadable or from another version: measuring again is always correct
        log.warning("saved record %s not reused (%s); measuring again", path, err)
        return None
