"""Teach your own, second half: the live training and its evaluation (using the head is `teach_use`)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core.catdog import teach, teach_worker
from pages._shared import asset_text
from pages.catdog.teach_use import use_it

POLL_SECONDS = 1.0
"""How often the page asks the training for news (each ask also costs a Keras clear_session)."""


def curves_chart(loss: list[float], accuracy: list[float]) -> alt.Chart:
    # While training runs the lists grow in another thread; draw the epochs both have.
    epochs = min(len(loss), len(accuracy))
    loss, accuracy = loss[:epochs], accuracy[:epochs]
    frame = pd.DataFrame(
        {"epoch": np.arange(1, len(loss) + 1).repeat(2), "value": np.ravel(np.column_stack([loss, accuracy])),
         "curve": ["training loss", "training accuracy"] * len(loss)}
    )  # fmt: skip
    return alt.Chart(frame).mark_line().encode(x="epoch:Q", y=alt.Y("value:Q", title=None), color="curve:N")


def live_panel() -> None:
    """Follows the running job from a fragment, then reruns the page once to show its result."""
    job = st.session_state.get("teach_job")
    if job is None:
        return
    was_running = not job.done

    @st.fragment(run_every=POLL_SECONDS if was_running else None)
    def panel() -> None:
        progress = job.progress
        if was_running and job.done:
            st.rerun()
        if not job.done:
            fraction = progress.epoch / progress.epochs if progress.epochs else 0.0
            st.progress(min(fraction, 1.0), text=f"{st.session_state.teach_job_kind}: {progress.phase}")
            if progress.loss:
                st.altair_chart(curves_chart(progress.loss, progress.accuracy), width="stretch")

    panel()
    if job.done:
        _collect(job)


def _collect(job) -> None:
    """Moves a finished job's result into the session (once) and forgets the job."""
    state = st.session_state
    state.teach_job = None
    if job.error is not None:
        st.error(str(job.error), icon=":material/error:")
    elif state.teach_job_kind == "training":
        state.teach_training, state.teach_keys, state.teach_training_labels = job.result
        state.teach_head, state.teach_curve = job.result[0].head, None
        state.teach_verdicts = {}
    else:
        state.teach_curve = job.result


def confusion_chart(confusion: np.ndarray, names: list[str]) -> alt.Chart:
    rows = [{"true": names[i], "predicted": names[j], "photos": int(confusion[i, j])}
            for i in range(len(names)) for j in range(len(names))]  # fmt: skip
    base = alt.Chart(pd.DataFrame(rows)).encode(x=alt.X("predicted:N", sort=names), y=alt.Y("true:N", sort=names))
    cells = base.mark_rect().encode(color=alt.Color("photos:Q", scale=alt.Scale(scheme="blues"), legend=None))
    return (cells + base.mark_text(fontSize=16).encode(text="photos:Q")).properties(height=alt.Step(40))


def evaluation(load_classifier) -> None:
    state = st.session_state
    training = state.get("teach_training")
    if training is None:
        return
    names, result = list(training.head.class_names), training.evaluation
    st.subheader("How good is it?", anchor=False)
    left, right = st.columns(2)
    with left:
        if result.accuracy is None:
            st.info("Cross-validation needs at least two photos in every class.", icon=":material/info:")
        else:
            st.metric(f"Cross-validated accuracy ({result.folds} folds)", f"{result.accuracy:.1%}")
            st.altair_chart(confusion_chart(result.confusion, names), width="stretch")
        st.caption(f"Trained in {training.seconds:.1f} s.")
    with right:
        st.altair_chart(curves_chart(training.loss, training.accuracy), width="stretch")
        st.caption("The head trained on all your photos (every view), epoch by epoch.")
    wrong = [
        index for index in range(len(state.teach_keys)) if result.folds and result.predicted[index] != _label(index)
    ]
    if wrong:
        st.markdown(f"**Misclassified when held out: {len(wrong)}**")
        for column, index in zip(st.columns(8), wrong[:8], strict=False):
            column.image(state.teach_thumbs[state.teach_keys[index]], width="stretch")
            column.caption(f"{names[_label(index)]} → {names[result.predicted[index]]}")
    with st.expander("How the accuracy is measured"):
        st.markdown(asset_text("teach_your_own_evaluation.md"))
    if st.button(
        "How many photos do you need?", icon=":material/show_chart:", disabled=state.get("teach_job") is not None
    ):
        features = np.stack([state.teach_cache[key].features for key in state.teach_keys])
        labels = np.array([_label(index) for index in range(len(state.teach_keys))])
        state.teach_job = teach.Background(
            teach_worker.learning_curve_in_worker, features, labels, len(names), training.head.config
        )
        state.teach_job_kind = "learning curve"
        st.rerun()
    if state.get("teach_curve") == []:
        st.info("The curve needs at least two photos in every class (one to learn from, one to judge).")
    elif state.get("teach_curve"):
        frame = pd.DataFrame(state.teach_curve)
        line = (
            alt.Chart(frame)
            .mark_line(point=True)
            .encode(
                x=alt.X("photos_per_class:Q", title="photos per class"),
                y=alt.Y(
                    "accuracy:Q", title="held-out accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
                ),
            )
        )
        st.altair_chart(line + line.mark_area(opacity=0.2).encode(y="low:Q", y2="high:Q"), width="stretch")


def _label(index: int) -> int:
    return int(st.session_state.teach_training_labels[index])


def render(load_classifier) -> None:
    live_panel()
    evaluation(load_classifier)
    use_it(load_classifier)
