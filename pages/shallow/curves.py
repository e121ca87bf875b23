"""Shallow-net lab: the live panel's loss and accuracy curves, and the specs every watcher of a run shares."""

from __future__ import annotations

import threading

from core.cache import ByteBoundedCache
from core.shallow import charts, view
from core.shallow.config import TrainingConfig, article_results, matching_article_result
from core.shallow.jobs import TrainingJob
from pages._shared import chart_spec

SPECS = ByteBoundedCache(16 * 2**20, "live chart specs")
_BUILDING = threading.Lock()


def epoch_specs(job: TrainingJob, history: tuple[dict, ...], large: bool, height: int | None) -> tuple[dict, dict]:
    """The loss and accuracy chart specs of a job's whole epochs, made once and shared by every watcher.

    Building a chart (its frame, Altair's validated `to_dict`) is most of a polling rerun's
    cost; drawing a ready spec takes well under a millisecond. One build at a time, so thirty
    tabs arriving at a new epoch together wait for one build instead of making thirty.
    """
    key = (job.id, len(history), large, height)
    if (specs := SPECS.get(key)) is None:
        with _BUILDING:
            frame = None if key in SPECS else view.curve_frame(history, None)
            specs = SPECS.get_or_compute(
                key,
                lambda: tuple(
                    chart_spec(chart.properties(height=height) if height else chart)
                    for chart in build_curves(job.config, frame, large)
                ),
            )
    return specs


def build_curves(config: TrainingConfig, frame, large: bool):
    match = matching_article_result(config)
    references = [(f"AlexNet {article_results()[1]:.2%}", article_results()[1])]
    if match:
        references.append((f"article {match.reported['test_accuracy']:.2%}", match.reported["test_accuracy"]))
    return (
        charts.training_curve(frame, "loss", large=large),
        charts.training_curve(frame, "accuracy", references, large=large),
    )
