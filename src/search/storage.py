"""Optuna storages that need no server: SQLite (with heartbeats) or a journal file."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage, RetryFailedTrialCallback
from optuna.storages.journal import JournalFileBackend

JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")


def open_storage(spec: str, heartbeat: int | None = None) -> optuna.storages.BaseStorage:
    """A database URL (``sqlite:///path/study.db``) or a journal file path (``study.log``).

    With ``heartbeat`` (seconds, database storages only) every running trial writes a heartbeat;
    a worker that starts trials marks a trial whose heartbeat stopped for ``2 * heartbeat``
    seconds (its worker was killed) as failed and queues it again with the same parameters.
    Optuna's journal storage keeps no heartbeats: a killed worker's trial stays RUNNING there.

    Args:
        spec: where the study lives.
        heartbeat: seconds between heartbeats; ``None`` turns them off.
    """
    if spec.endswith(JOURNAL_SUFFIXES) and "://" not in spec:
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(spec))
    if "://" not in spec:
        raise ValueError(
            f"storage {spec!r} is neither a database URL (sqlite:///study.db) nor a journal "
            f"file ({', '.join(JOURNAL_SUFFIXES)})"
        )
    if spec.startswith("sqlite:///"):
        Path(spec.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # SQLite locks the whole file per write: let a worker wait for the others' writes
    engine = {"connect_args": {"timeout": 60}} if spec.startswith("sqlite") else None
    beats = {}
    if heartbeat is not None:
        retry = RetryFailedTrialCallback(max_retry=1)
        beats = {"heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat}
        beats["heartbeat_stale_trial_callback"] = retry
    for attempt in range(3):
        try:
            return RDBStorage(spec, engine_kwargs=engine, **beats)
        except sqlalchemy.exc.OperationalError:  # workers started together race to make tables
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")
