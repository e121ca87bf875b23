"""Saved training runs in SQLite (WAL), with each trained model saved as `.keras` beside it.

The database is created on first use at `$EXPLORER_DATA_DIR/runs.sqlite` (default `var/`
in the project) or any path given. WAL mode lets the page read while a training worker
writes. A run is inserted as "running" when it starts, its history is committed epoch by
epoch, and it is closed as finished, stopped or failed; a run left "running" by a process
that no longer exists (a crash, a kill) is marked "interrupted" the next time the store
is opened, with the epochs it completed kept.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROCESS_TOKEN = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
"""Identifies this process, so a reused PID is not mistaken for a live owner."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,
    label TEXT NOT NULL,
    config TEXT NOT NULL,
    params INTEGER NOT NULL,
    engine TEXT,
    device TEXT,
    duration_s REAL,
    epochs_run INTEGER DEFAULT 0,
    best_epoch INTEGER,
    seconds_per_epoch REAL,
    test_loss REAL,
    test_accuracy REAL,
    test_precision REAL,
    test_recall REAL,
    evaluation TEXT,
    model_path TEXT,
    error TEXT,
    owner_pid INTEGER,
    owner_token TEXT
);
CREATE TABLE IF NOT EXISTS history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
"""

STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def data_dir() -> Path:
    """Where runs and models live: `$EXPLORER_DATA_DIR`, else `var/` in the project."""
    return Path(os.environ.get("EXPLORER_DATA_DIR", PROJECT_ROOT / "var")).expanduser()


def default_db_path() -> Path:
    return data_dir() / "runs.sqlite"


@dataclass(frozen=True)
class Run:
    """One saved run as read back from the database."""

    run_id: int
    created_at: float
    finished_at: float | None
    status: str
    label: str
    config: dict
    params: int
    engine: str | None
    device: str | None
    duration_s: float | None
    epochs_run: int
    best_epoch: int | None
    seconds_per_epoch: float | None
    test_loss: float | None
    test_accuracy: float | None
    test_precision: float | None
    test_recall: float | None
    evaluation: dict | None
    model_path: str | None
    error: str | None

    @property
    def has_model(self) -> bool:
        return bool(self.model_path) and Path(self.model_path).is_file()


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """The saved-runs database. Safe to share between threads; one connection per call."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path else default_db_path()
        self.models_dir = self.path.parent / "models"
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
        self.mark_interrupted()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def _write(self, sql: str, parameters=()) -> int:
        """Runs one write in its own transaction; returns lastrowid."""
        with self._lock:
            connection = self._connect()
            try:
                connection.execute("BEGIN IMMEDIATE")
                cursor = connection.execute(sql, parameters)
                connection.execute("COMMIT")
                return cursor.lastrowid
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            finally:
                connection.close()

    def mark_interrupted(self) -> int:
        """Marks runs whose owning process is gone as interrupted; returns how many."""
        with self._connect() as connection:
            rows = connection.execute("SELECT id, owner_pid, owner_token FROM runs WHERE status = 'running'").fetchall()
        stale = [row["id"] for row in rows if row["owner_token"] != PROCESS_TOKEN and not _pid_alive(row["owner_pid"])]
        for run_id in stale:
            self._write(
                "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
                ("The process training this run ended before it finished (a crash or a kill).", run_id),
            )
        return len(stale)

    # Writing a run ---------------------------------------------------------------------------
    def start_run(self, *, label: str, config: dict, params: int, engine: str, device: str) -> int:
        return self._write(
            "INSERT INTO runs (created_at, status, label, config, params, engine, device, owner_pid, owner_token)"
            " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                label,
                json.dumps(config, sort_keys=True),
                params,
                engine,
                device,
                os.getpid(),
                PROCESS_TOKEN,
            ),
        )

    def add_epoch(self, run_id: int, row: dict) -> None:
        values = [row.get(name) for name in HISTORY_FIELDS]
        self._write(
            f"INSERT OR REPLACE INTO history (run_id, {', '.join(HISTORY_FIELDS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, *values),
        )
        self._write("UPDATE runs SET epochs_run = ? WHERE id = ?", (row["epoch"], run_id))

    def model_path_for(self, run_id: int) -> Path:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        return self.models_dir / f"run-{run_id}.keras"

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        duration_s: float,
        epochs_run: int,
        best_epoch: int | None = None,
        seconds_per_epoch: float | None = None,
        evaluation: dict | None = None,
        model_path: str | None = None,
        error: str | None = None,
    ) -> None:
        if status not in STATUSES:
            raise ValueError(f"Unknown run status {status!r}")
        evaluation = evaluation or {}
        self._write(
            "UPDATE runs SET status = ?, finished_at = ?, duration_s = ?, epochs_run = ?, best_epoch = ?,"
            " seconds_per_epoch = ?, test_loss = ?, test_accuracy = ?, test_precision = ?, test_recall = ?,"
            " evaluation = ?, model_path = ?, error = ? WHERE id = ?",
            (
                status,
                time.time(),
                duration_s,
                epochs_run,
                best_epoch,
                seconds_per_epoch,
                evaluation.get("loss"),
                evaluation.get("accuracy"),
                evaluation.get("precision"),
                evaluation.get("recall"),
                json.dumps(evaluation) if evaluation else None,
                model_path,
                error,
                run_id,
            ),
        )

    # Reading ---------------------------------------------------------------------------------
    @staticmethod
    def _run(row: sqlite3.Row) -> Run:
        return Run(
            run_id=row["id"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            status=row["status"],
            label=row["label"],
            config=json.loads(row["config"]),
            params=row["params"],
            engine=row["engine"],
            device=row["device"],
            duration_s=row["duration_s"],
            epochs_run=row["epochs_run"] or 0,
            best_epoch=row["best_epoch"],
            seconds_per_epoch=row["seconds_per_epoch"],
            test_loss=row["test_loss"],
            test_accuracy=row["test_accuracy"],
            test_precision=row["test_precision"],
            test_recall=row["test_recall"],
            evaluation=json.loads(row["evaluation"]) if row["evaluation"] else None,
            model_path=row["model_path"],
            error=row["error"],
        )

    def list_runs(self) -> list[Run]:
        """All runs, newest first."""
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM runs ORDER BY id DESC").fetchall()
        return [self._run(row) for row in rows]

    def get_run(self, run_id: int) -> Run:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"There is no saved run {run_id}.")
        return self._run(row)

    def history(self, run_id: int) -> list[dict]:
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {', '.join(HISTORY_FIELDS)} FROM history WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [dict(row) for row in rows]

    def history_csv(self, run_id: int) -> str:
        """The run's per-epoch history as CSV text (header row first)."""
        self.get_run(run_id)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history(run_id))
        return buffer.getvalue()

    def delete_run(self, run_id: int) -> None:
        """Deletes a run, its history and its model file. A running run cannot be deleted."""
        run = self.get_run(run_id)
        if run.status == "running":
            raise ValueError("This run is still training; stop it before deleting it.")
        self._write("DELETE FROM runs WHERE id = ?", (run_id,))
        if run.model_path:
            Path(run.model_path).unlink(missing_ok=True)


def list_finished_runs(db_path: str | os.PathLike | None = None) -> list[dict]:
    """Runs with test results (finished or stopped), for comparison charts on other pages.

    Returns:
        Dicts with run_id, label, params, test_accuracy (0..1), test_loss, status, config,
        and dataset ("Fashion-MNIST"). An absent database gives an empty list.
    """
    path = Path(db_path).expanduser() if db_path else default_db_path()
    if not path.exists():
        return []
    return [
        {
            "run_id": run.run_id,
            "label": run.label,
            "params": run.params,
            "test_accuracy": run.test_accuracy,
            "test_loss": run.test_loss,
            "status": run.status,
            "config": run.config,
            "dataset": "Fashion-MNIST",
        }
        for run in RunStore(path).list_runs()
        if run.test_accuracy is not None and run.status in ("finished", "stopped")
    ]
