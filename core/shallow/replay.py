"""Replays of full-length training runs that really happened, shown at a chosen speed.

The article trained its best network for hundreds of epochs; in a lecture there is time for a
few. A replay file (`assets/replays/*.json`) holds the epoch-by-epoch history of one real run
with the machine, engine and date it ran on, and its test metrics, as `python -m bench gpu`
writes it (`gpu-replay.json` in its output folder). The lab offers a replay only when such a
file exists: a history is never made up. To ship one, copy the file into `assets/replays/`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from core.shallow.config import TrainingConfig

REPLAY_DIR = Path(__file__).resolve().parents[2] / "assets" / "replays"


def replay_dir() -> Path:
    """Where the replays are: `$EXPLORER_REPLAY_DIR`, else `assets/replays/`."""
    return Path(os.environ.get("EXPLORER_REPLAY_DIR") or REPLAY_DIR)


HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


@dataclass(frozen=True)
class Replay:
    """One real run's history, where and when it ran, and how it scored on the test set."""

    name: str
    config: TrainingConfig
    device: str
    engine: str
    date: str
    source: str
    history: tuple[dict, ...]
    test_accuracy: float
    test_loss: float

    @property
    def training_seconds(self) -> float:
        """How long the run really took (the sum of its epochs)."""
        return float(sum(row["seconds"] for row in self.history))

    @property
    def title(self) -> str:
        return (
            f"{self.config.label}: {len(self.history)} epochs on {self.device} ({self.engine} engine, {self.date}), "
            f"test accuracy {self.test_accuracy:.2%}"
        )


def replay_record(config: TrainingConfig, run, history: list[dict], source: str, date: str) -> dict:
    """The JSON a replay file holds, from a finished run of the run store and its history."""
    return {
        "config": config.to_dict(),
        "device": run.device,
        "engine": run.engine,
        "date": date,
        "source": source,
        "test_accuracy": run.test_accuracy,
        "test_loss": run.test_loss,
        "history": [{field: row[field] for field in HISTORY_FIELDS} for row in history],
    }


def parse_replay(name: str, data: dict) -> Replay:
    """Checks one replay file's contents.

    Raises:
        ValueError: naming the file and what is wrong with it.
    """
    try:
        config = TrainingConfig.from_dict(data["config"])
        history = tuple({field: float(row[field]) for field in HISTORY_FIELDS} for row in data["history"])
        replay = Replay(
            name=name,
            config=config,
            device=str(data["device"]),
            engine=str(data["engine"]),
            date=str(data["date"]),
            source=str(data["source"]),
            history=history,
            test_accuracy=float(data["test_accuracy"]),
            test_loss=float(data["test_loss"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"Replay {name}: {error}") from None
    if not history:
        raise ValueError(f"Replay {name}: the history is empty.")
    epochs = [row["epoch"] for row in history]
    if epochs != list(range(1, len(history) + 1)):
        raise ValueError(f"Replay {name}: epochs must run 1, 2, 3, ... without gaps.")
    if not all(math.isfinite(value) for row in history for value in row.values()):
        raise ValueError(f"Replay {name}: the history holds a value that is not a number.")
    return replay


def load_replays(folder: Path | None = None) -> tuple[list[Replay], list[str]]:
    """Every replay in the folder, newest name last, and one message per file that could not be used."""
    folder = replay_dir() if folder is None else folder
    replays, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            problems.append(f"Replay {path.name} cannot be read: {error}")
            continue
        try:
            replays.append(parse_replay(path.name, data))
        except ValueError as error:
            problems.append(str(error))
    return replays, problems


def epochs_shown(replay: Replay, elapsed_seconds: float, duration_seconds: float) -> int:
    """How many epochs a replay lasting `duration_seconds` shows `elapsed_seconds` after it starts.

    The epochs come at the pace they really took, compressed to the chosen duration (slow
    first epochs, compiling, take longer here too); at the end every epoch is shown.
    """
    if elapsed_seconds <= 0:
        return 0
    if elapsed_seconds >= duration_seconds:
        return len(replay.history)
    target = elapsed_seconds / duration_seconds * replay.training_seconds
    done = 0.0
    for index, row in enumerate(replay.history):
        done += row["seconds"]
        if done > target:
            return index
    return len(replay.history)
