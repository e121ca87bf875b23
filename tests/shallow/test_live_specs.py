"""The live panel's shared chart specs draw exactly what `st.altair_chart` draws, and are made once per epoch."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from core.shallow import charts, view
    from pages._shared import chart_spec, draw_chart

    history = [
        {"epoch": n, "loss": 1 / n, "accuracy": 0.7 + n / 100, "val_loss": 1.1 / n, "val_accuracy": 0.69 + n / 100}
        for n in range(1, 6)
    ]
    chart = charts.training_curve(view.curve_frame(history, None), "accuracy", [("AlexNet 86.43%", 0.8643)])
    st.altair_chart(chart.properties(height=400))
    draw_chart(st, chart_spec(chart.properties(height=400)))


def _charts(at: AppTest) -> list:
    return [element.proto for element in at.get("vega_lite_chart")]


def test_a_spec_draws_the_same_chart_as_altair_does():
    at = AppTest.from_function(_script, default_timeout=60).run()
    assert not at.exception
    from_altair, from_spec = _charts(at)
    assert json.loads(from_altair.spec) == json.loads(from_spec.spec)
    assert json.loads(from_spec.spec)["height"] == 400
    assert [(d.name, d.data.data) for d in from_altair.datasets] == [(d.name, d.data.data) for d in from_spec.datasets]
    assert from_spec.datasets and from_altair.theme == from_spec.theme
