"""Shallow-net lab: the settings' values, the article's presets, and the address bar that carries them.

The form itself is `pages.shallow.form`. Widgets hold their values in `st.session_state` under
the keys of `widget_values`. On a session's first visit they are filled from the link
(`?units=78,78&dropout=0.5`), later from the last configuration the page built, so that
switching pages and coming back keeps them.
"""

from __future__ import annotations

import streamlit as st

from core.shallow import view
from core.shallow.config import MAX_LAYERS, TrainingConfig, article_results, cnn_presets

ARCHITECTURE_NAMES = {"article": "Per-pixel (the article)", "mlp": "Conventional MLP", "cnn": "Shallow CNN"}


def widget_values(config: TrainingConfig) -> dict:
    """The session-state value of every settings widget for `config`."""
    units = config.hidden_units
    return {
        "sn_architecture": config.architecture,
        "sn_layers": len(units),
        **{f"sn_units_{layer}": units[min(layer, len(units)) - 1] for layer in range(1, MAX_LAYERS + 1)},
        "sn_filters": config.filters,
        "sn_kernel_size": config.kernel_size,
        "sn_conv_blocks": config.conv_blocks,
        "sn_activation": config.activation,
        "sn_dropout": config.dropout,
        "sn_optimizer": config.optimizer,
        "sn_learning_rate": config.learning_rate,
        "sn_batch_size": config.batch_size,
        "sn_epochs": config.epochs,
        "sn_patience": config.patience,
        "sn_subset": config.train_limit is not None,
        "sn_train_limit": config.train_limit or view.QUICK_DEMO["train_limit"],
        "sn_validation_split": config.validation_split,
        "sn_seed": config.seed,
        "sn_mixed_precision": config.mixed_precision,
        "sn_engine": config.engine,
    }


def restore() -> None:
    """Fills widgets that have no value yet: from the link on the first visit, else the last settings."""
    if "sn_config" not in st.session_state:
        config, problems = view.config_from_query(st.query_params.to_dict())
        st.session_state.sn_config = config.to_dict()
        st.session_state.sn_link_problems = problems
    for key, value in widget_values(TrainingConfig.from_dict(st.session_state.sn_config)).items():
        st.session_state.setdefault(key, value)


def load(config: TrainingConfig) -> None:
    for key, value in widget_values(config).items():
        st.session_state[key] = value


def _load_preset() -> None:
    chosen = st.session_state.sn_preset
    result = next(result for result in article_results()[0] if result.id == chosen)
    load(result.config)
    st.session_state.sn_preset = None
    st.session_state.sn_loaded = result.title


def _load_cnn_preset() -> None:
    preset = next(preset for preset in cnn_presets() if preset.id == st.session_state.sn_cnn_preset)
    load(preset.config)
    st.session_state.sn_cnn_preset = None
    st.session_state.sn_loaded_cnn = preset


def quick_demo() -> None:
    st.session_state.sn_subset = True
    st.session_state.sn_train_limit = view.QUICK_DEMO["train_limit"]
    st.session_state.sn_epochs = view.QUICK_DEMO["epochs"]


def presets() -> None:
    """One click per configuration the article reports, with its published numbers beside them."""
    results, alexnet = article_results()
    st.pills(
        "Load one of the article's configurations",
        [result.id for result in results],
        format_func={result.id: result.title for result in results}.get,
        key="sn_preset",
        on_change=_load_preset,
    )
    if "sn_loaded" in st.session_state:
        st.success(
            f"Loaded **{st.session_state.pop('sn_loaded')}** as the article trained it (all 54,000 images, "
            "early stopping with patience 50). That takes hours here: **Quick demo** below shrinks it."
        )
    st.dataframe(view.article_presets_frame(), hide_index=True)
    st.caption(f"AlexNet reaches **{alexnet:.2%}** on Fashion-MNIST (Ma et al., as the article cites it).")
    presets = cnn_presets()
    st.pills(
        "Or a shallow CNN, the article's future work (measured here: the article trains no CNN)",
        [preset.id for preset in presets],
        format_func={preset.id: preset.title for preset in presets}.get,
        key="sn_cnn_preset",
        on_change=_load_cnn_preset,
    )
    if "sn_loaded_cnn" in st.session_state:
        preset = st.session_state.pop("sn_loaded_cnn")
        st.success(
            f"Loaded **{preset.title}** as it was trained here: {preset.measured['test_accuracy']:.2%} on the "
            f"test images after {preset.measured['epochs_run']} epochs. **Quick demo** below shrinks it."
        )
    st.dataframe(view.cnn_presets_frame(), hide_index=True)
    st.caption(presets[0].source if presets else "")


def sync_url(config: TrainingConfig) -> None:
    """Writes the settings into the address bar (only those that differ from the page's defaults)."""
    wanted = view.config_to_query(config)
    for key in view.QUERY_KEYS.values():
        if key in wanted and st.query_params.get(key) != wanted[key]:
            st.query_params[key] = wanted[key]
        elif key not in wanted and key in st.query_params:
            del st.query_params[key]
