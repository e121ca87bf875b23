"""Saved training runs in SQLite (WAL), with each trained model saved as `.keras` beside it.

The database is created on first use at `$EXPLORER_DATA_DIR/runs.sqlite` (default `var/`
in the project) or any path given. WAL mode lets the page read while a training worker
writes. A run is inserted as "running" when it starts, its history is committed epoch by
epoch, and it is closed as finished, stopped or failed; a run left "running" by a process
that no longer exists (a crash, a kill) is marked "interrupted" the next time the store
is opened, with the epochs it completed kept.

A write that fails (a full disk, a read-only folder, a lock held too long) raises
`RunStoreError`, whose message names the database and the cause. The closing write of a run
that cannot be made is kept in memory (`defer_finish`): it is retried before every later
write, and reads show the run as it ended meanwhile, so no row is left "running" for ever.

In classroom mode each run records the session that started it (`session_owner`, an opaque
token) and the nickname it chose for the class board; a database from before these columns
is migrated when it is opened (its runs have no owner, so only the lecturer deletes them).
The class board shows the runs finished since the lecturer last cleared it (`clear_board`).
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

from core.classroom import ANYONE, Actor

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
    owner_token TEXT,
    session_owner TEXT,
    nickname TEXT
);
CREATE TABLE IF NOT EXISTS history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    loss REAL, accuracy REAL, val_loss REAL, val_accuracy REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT);
"""
ADDED_COLUMNS = {"session_owner": "TEXT", "nickname": "TEXT"}
"""Columns added after the first release: `RunStore` adds them to an older database."""


class RunStoreError(RuntimeError):
    """The saved-runs database or its folder cannot be read or written; says which and why."""


_deferred_lock = threading.Lock()
_DEFERRED: dict[str, dict[int, dict]] = {}
"""Closing writes that failed, per database file: {path: {run_id: columns}}, shared by every
store of this process on that file."""

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
    session_owner: str | None = None
    nickname: str | None = None

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

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 30.0):
        """Opens (creating if needed) the database.

        Args:
            path: the database file (default `default_db_path()`).
            timeout: seconds a write waits for another writer's lock before it fails.

        Raises:
            RunStoreError: the folder or the file cannot be created or written.
        """
        self.path = Path(path).expanduser() if path else default_db_path()
        self.models_dir = self.path.parent / "models"
        self.timeout = timeout
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(SCHEMA)
                self._migrate(connection)
        except (OSError, sqlite3.Error) as error:
            raise self._error("open", error) from error
        self.mark_interrupted()

    @staticmethod
    def _migrate(connection: sqlite3.Connection) -> None:
        """Adds the columns a database made before them lacks (SQLite adds a column in place, rows kept)."""
        present = {row["name"] for row in connection.execute("PRAGMA table_info(runs)")}
        for name, kind in ADDED_COLUMNS.items():
            if name not in present:
                try:
                    connection.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as error:
                    if "duplicate column" not in str(error):  # Another process migrated it just now.
                        raise

    def _error(self, action: str, error: BaseException) -> RunStoreError:
        return RunStoreError(
            f"Cannot {action} the saved runs in {self.path}: {error}. "
            "Free some disk space or make the folder writable (or set EXPLORER_DATA_DIR to another folder)."
        )

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        return connection

    def _write(self, sql: str, parameters=(), *, flush: bool = True) -> int:
        """Runs one write in its own transaction (after any deferred ones); returns lastrowid.

        Raises:
            RunStoreError: the write failed (locked, disk full, read-only), with SQLite's reason.
        """
        if flush:
            self.flush_deferred()
        with self._lock:
            try:
                connection = self._connect()
            except (OSError, sqlite3.Error) as error:
                raise self._error("write", error) from error
            try:
                connection.execute("BEGIN IMMEDIATE")
                cursor = connection.execute(sql, parameters)
                connection.execute("COMMIT")
                return cursor.lastrowid
            except sqlite3.Error as error:
                self._rollback(connection)
                raise self._error("write", error) from error
            except BaseException:
                self._rollback(connection)
                raise
            finally:
                connection.close()

    @staticmethod
    def _rollback(connection: sqlite3.Connection) -> None:
        """Rolls back only a transaction that is open: a failed BEGIN or COMMIT may have left none."""
        if connection.in_transaction:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # The original error is the one worth reporting.

    # Closing writes that could not be made --------------------------------------------------
    def defer_finish(self, run_id: int, columns: dict) -> None:
        """Keeps a run's closing columns in memory until a write succeeds (see the module docstring)."""
        with _deferred_lock:
            _DEFERRED.setdefault(str(self.path), {})[run_id] = dict(columns)

    def deferred(self) -> dict[int, dict]:
        """The closing writes still waiting for the database, by run id."""
        with _deferred_lock:
            return {run_id: dict(columns) for run_id, columns in _DEFERRED.get(str(self.path), {}).items()}

    def flush_deferred(self) -> None:
        """Retries the deferred closing writes; those that fail again stay deferred."""
        for run_id, columns in self.deferred().items():
            try:
                self._update_run(run_id, columns, flush=False)
            except RunStoreError:
                return
            with _deferred_lock:
                _DEFERRED.get(str(self.path), {}).pop(run_id, None)

    def _update_run(self, run_id: int, columns: dict, *, flush: bool = True) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._write(f"UPDATE runs SET {assignments} WHERE id = ?", (*columns.values(), run_id), flush=flush)

    def mark_interrupted(self) -> int:
        """Marks runs whose owning process is gone as interrupted; returns how many."""
        rows = self._read("SELECT id, owner_pid, owner_token FROM runs WHERE status = 'running'")
        stale = [row["id"] for row in rows if row["owner_token"] != PROCESS_TOKEN and not _pid_alive(row["owner_pid"])]
        for run_id in stale:
            self._write(
                "UPDATE runs SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
                ("The process training this run ended before it finished (a crash or a kill).", run_id),
            )
        return len(stale)

    # Writing a run ---------------------------------------------------------------------------
    def start_run(
        self,
        *,
        label: str,
        config: dict,
        params: int,
        engine: str,
        device: str,
        session_owner: str | None = None,
        nickname: str | None = None,
    ) -> int:
        return self._write(
            "INSERT INTO runs (created_at, status, label, config, params, engine, device, owner_pid, owner_token,"
            " session_owner, nickname) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time.time(),
                label,
                json.dumps(config, sort_keys=True),
                params,
                engine,
                device,
                os.getpid(),
                PROCESS_TOKEN,
                session_owner,
                nickname,
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
        """Closes a run with its outcome.

        Raises:
            RunStoreError: the write failed; `finish_columns` + `defer_finish` keep it.
        """
        self._update_run(
            run_id,
            finish_columns(
                status=status,
                duration_s=duration_s,
                epochs_run=epochs_run,
                best_epoch=best_epoch,
                seconds_per_epoch=seconds_per_epoch,
                evaluation=evaluation,
                model_path=model_path,
                error=error,
            ),
        )

    def end_run(self, run_id: int, *, status: str, error: str) -> None:
        """Closes a run that is still "running" with a status and a reason, keeping its epochs."""
        if status not in STATUSES:
            raise ValueError(f"Unknown run status {status!r}")
        self._write(
            "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ? AND status = 'running'",
            (status, error, time.time(), run_id),
        )

    def save_model(self, model, run_id: int) -> Path:
        """Saves a Keras model as the run's `.keras` file, whole or not at all.

        The model is written to a temporary name beside the final one and renamed over it,
        so a full disk leaves no half-written file behind.

        Raises:
            RunStoreError: the folder cannot be created or the file cannot be written.
        """
        return self._write_model(run_id, model.save)

    def save_model_bytes(self, data: bytes, run_id: int) -> Path:
        """Saves a `.keras` file's bytes (a model trained elsewhere) as the run's model, whole or not at all.

        Raises:
            RunStoreError: the folder cannot be created or the file cannot be written.
        """
        return self._write_model(run_id, lambda partial: partial.write_bytes(data))

    def _write_model(self, run_id: int, write) -> Path:
        """Writes the run's `.keras` file with `write(temporary_path)`, then renames it into place."""
        path = self.models_dir / f"run-{run_id}.keras"
        partial = path.with_name(f".{path.stem}.partial.keras")
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            write(partial)
            os.replace(partial, path)
        except Exception as error:
            partial.unlink(missing_ok=True)
            raise RunStoreError(f"Cannot save the model to {path}: {error}") from error
        return path

    # Reading ---------------------------------------------------------------------------------
    def _run(self, row: sqlite3.Row, deferred: dict[int, dict] | None = None) -> Run:
        """A row as a `Run`, with any deferred closing write for it shown as made."""
        pending = (self.deferred() if deferred is None else deferred).get(row["id"])
        if pending and row["status"] == "running":
            row = {**dict(row), **pending}
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
            session_owner=row["session_owner"],
            nickname=row["nickname"],
        )

    def _read(self, sql: str, parameters=()) -> list[sqlite3.Row]:
        """The rows of one query.

        Raises:
            RunStoreError: the database cannot be read, with SQLite's reason.
        """
        try:
            connection = self._connect()
            try:
                return connection.execute(sql, parameters).fetchall()
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise self._error("read", error) from error

    def list_runs(self) -> list[Run]:
        """All runs, newest first."""
        rows = self._read("SELECT * FROM runs ORDER BY id DESC")
        deferred = self.deferred()
        return [self._run(row, deferred) for row in rows]

    def get_run(self, run_id: int) -> Run:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise KeyError(f"There is no saved run {run_id}.")
        return self._run(rows[0])

    def history(self, run_id: int) -> list[dict]:
        rows = self._read(f"SELECT {', '.join(HISTORY_FIELDS)} FROM history WHERE run_id = ? ORDER BY epoch", (run_id,))
        return [dict(row) for row in rows]

    def history_csv(self, run_id: int) -> str:
        """The run's per-epoch history as CSV text (header row first)."""
        self.get_run(run_id)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history(run_id))
        return buffer.getvalue()

    def delete_run(self, run_id: int, actor: Actor = ANYONE) -> None:
        """Deletes a run, its history and its model file. A running run cannot be deleted.

        Raises:
            NotYours: in classroom mode, `actor` is neither the run's session nor the lecturer.
        """
        run = self.get_run(run_id)
        actor.check(run.session_owner, f"Run #{run_id}")
        if run.status == "running":
            raise ValueError("This run is still training; stop it before deleting it.")
        self._write("DELETE FROM runs WHERE id = ?", (run_id,))
        if run.model_path:
            Path(run.model_path).unlink(missing_ok=True)

    # Classroom: nicknames and the class board -------------------------------------------------
    def set_nickname(self, session_owner: str, nickname: str | None) -> None:
        """Names every run of a session on the class board (a later change renames them all)."""
        self._write("UPDATE runs SET nickname = ? WHERE session_owner = ?", (nickname, session_owner))

    def nickname_of(self, session_owner: str) -> str | None:
        """The nickname a session last used, so a reloaded tab keeps it."""
        rows = self._read(
            "SELECT nickname FROM runs WHERE session_owner = ? AND nickname IS NOT NULL ORDER BY id DESC LIMIT 1",
            (session_owner,),
        )
        return rows[0]["nickname"] if rows else None

    def clear_board(self, now: float | None = None) -> None:
        """Starts the class board afresh: it shows only runs finished after this moment (none are deleted)."""
        self._write(
            "INSERT OR REPLACE INTO settings (name, value) VALUES ('board_cleared_at', ?)",
            (repr(time.time() if now is None else now),),
        )

    def board_cleared_at(self) -> float:
        rows = self._read("SELECT value FROM settings WHERE name = 'board_cleared_at'")
        return float(rows[0]["value"]) if rows else 0.0

    def board_runs(self) -> list[Run]:
        """Runs with test results (finished or stopped) that ended since the board was last cleared, newest first."""
        since = self.board_cleared_at()
        return [
            run
            for run in self.list_runs()
            if run.status in ("finished", "stopped")
            and run.test_accuracy is not None
            and (run.finished_at or 0.0) > since
        ]

    def discard_run(self, run_id: int) -> None:
        """Deletes a run this process started and that never trained (stopped before its first batch)."""
        with _deferred_lock:
            _DEFERRED.get(str(self.path), {}).pop(run_id, None)
        self._write("DELETE FROM runs WHERE id = ? AND owner_token = ?", (run_id, PROCESS_TOKEN))


def finish_columns(
    *,
    status: str,
    duration_s: float,
    epochs_run: int,
    best_epoch: int | None = None,
    seconds_per_epoch: float | None = None,
    evaluation: dict | None = None,
    model_path: str | None = None,
    error: str | None = None,
) -> dict:
    """The columns that close a run, as `finish_run` writes them (and `defer_finish` keeps them)."""
    if status not in STATUSES:
        raise ValueError(f"Unknown run status {status!r}")
    evaluation = evaluation or {}
    return {
        "status": status,
        "finished_at": time.time(),
        "duration_s": duration_s,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        "seconds_per_epoch": seconds_per_epoch,
        "test_loss": evaluation.get("loss"),
        "test_accuracy": evaluation.get("accuracy"),
        "test_precision": evaluation.get("precision"),
        "test_recall": evaluation.get("recall"),
        "evaluation": json.dumps(evaluation) if evaluation else None,
        "model_path": model_path,
        "error": error,
    }


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
