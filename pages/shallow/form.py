"""Shallow-net lab: the settings form, every setting of the training configuration in three boxes."""

from __future__ import annotations

import streamlit as st

from core.shallow import view
from core.shallow.config import (
    ACTIVATIONS,
    ARCHITECTURES,
    CONV_BLOCKS,
    ENGINES,
    KERNEL_SIZES,
    LIMITS,
    MAX_LAYERS,
    OPTIMIZERS,
    TrainingConfig,
)
from pages.shallow.settings import ARCHITECTURE_NAMES

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048)


def _pick_units() -> None:
    for layer in range(1, MAX_LAYERS + 1):
        st.session_state[f"sn_units_{layer}"] = st.session_state.sn_units_pick
    st.session_state.sn_units_pick = None


def limits(name: str) -> tuple:
    """A widget's min, max (and step, for fractions) from the configuration's own rule, `LIMITS`."""
    limit = LIMITS[name]
    return (limit.low, limit.high) if limit.step is None else (limit.low, limit.high, limit.step)


def _choices(options: tuple, current) -> list:
    """A fixed list of choices with the current value added, so a shared link's value is kept."""
    return sorted({*options, current})


def _layers(network, shape) -> dict:
    """The dense networks' shape: hidden layers and the neurons of each."""
    layers = network.segmented_control("Hidden layers", list(range(1, MAX_LAYERS + 1)), key="sn_layers", required=True)
    shape.pills(
        "Quick pick: neurons in every layer (share of the 784 pixels)",
        view.NEURON_PRESETS,
        format_func=view.neuron_preset_label,
        key="sn_units_pick",
        on_change=_pick_units,
    )
    units = tuple(
        column.number_input(f"Neurons, layer {layer}", *limits("hidden_units"), key=f"sn_units_{layer}")
        for layer, column in zip(range(1, layers + 1), network.columns(layers), strict=True)
    )
    return {"hidden_units": units}


def _convolutions(network) -> dict:
    """The CNN's shape: filters per convolution, kernel side, convolution blocks."""
    filters, kernel, blocks = network.columns(3)
    return {
        "filters": filters.number_input("Filters", *limits("filters"), key="sn_filters"),
        "kernel_size": kernel.segmented_control("Kernel side", KERNEL_SIZES, key="sn_kernel_size", required=True),
        "conv_blocks": blocks.segmented_control("Conv blocks", CONV_BLOCKS, key="sn_conv_blocks", required=True),
    }


def settings_form(has_gpu: bool, compact: bool = False) -> TrainingConfig | None:
    """Every setting of the training configuration; returns it, or None with the reason shown.

    `compact` (the projector layout) shows the network's size, activation, dropout and epochs
    in one box and keeps the rest (architecture, optimizer, data, engine) one click away.
    """
    if compact:
        network = epochs_box = st.container(border=True)
        shape = st.expander("More settings: architecture, optimizer, data and engine")
        training, data = shape.columns(2, border=True)
    else:
        network, training, data = st.columns([3, 2, 2], border=True)
        shape, epochs_box = network, training
    network.markdown("**Network**")
    architecture = shape.radio(
        "Architecture", list(ARCHITECTURES), format_func=ARCHITECTURE_NAMES.get, key="sn_architecture", horizontal=True
    )
    shape.caption(ARCHITECTURES[architecture])
    network_shape = _convolutions(network) if architecture == "cnn" else _layers(network, shape)
    activation = network.selectbox(
        "Activation", list(ACTIVATIONS), format_func=lambda name: ACTIVATIONS[name][0], key="sn_activation"
    )
    dropout = network.slider("Dropout (share of hidden values dropped)", *limits("dropout"), key="sn_dropout")

    training.markdown("**Training**")
    optimizer = training.selectbox(
        "Optimizer", list(OPTIMIZERS), format_func=lambda name: OPTIMIZERS[name][0], key="sn_optimizer"
    )
    learning_rate = training.select_slider(
        "Learning rate",
        _choices(LEARNING_RATES, st.session_state.sn_learning_rate),
        format_func="{:g}".format,
        key="sn_learning_rate",
    )
    batch_size = training.select_slider(
        "Batch size", _choices(BATCH_SIZES, st.session_state.sn_batch_size), key="sn_batch_size"
    )
    epochs = epochs_box.number_input("Epochs (at most)", *limits("epochs"), key="sn_epochs")
    patience = training.number_input(
        "Patience (epochs without a better validation loss before stopping)", *limits("patience"), key="sn_patience"
    )

    data.markdown("**Data and engine**")
    subset = data.toggle("Train on a subset", key="sn_subset")
    train_limit = data.number_input(
        "Training images", *limits("train_limit"), key="sn_train_limit", disabled=not subset
    )
    validation_split = data.number_input(
        "Validation share of the 60,000 training images", *limits("validation_split"), key="sn_validation_split"
    )
    seed = data.number_input("Seed", *limits("seed"), key="sn_seed")
    engine = data.selectbox(
        "Engine", list(ENGINES), key="sn_engine", help=" · ".join(f"**{k}**: {v}" for k, v in ENGINES.items())
    )
    mixed_precision = data.toggle(
        "Mixed precision",
        key="sn_mixed_precision",
        disabled=not has_gpu,
        help="float16 on the GPU, float32 output." if has_gpu else "Offered when the server has a GPU.",
    )
    try:
        config = TrainingConfig(
            architecture=architecture,
            **network_shape,
            activation=activation,
            dropout=round(dropout, 2),
            optimizer=optimizer,
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=epochs,
            patience=patience,
            train_limit=train_limit if subset else None,
            validation_split=round(validation_split, 2),
            seed=seed,
            mixed_precision=mixed_precision and has_gpu,
            engine=engine,
        )
    except ValueError as error:
        st.error(f"These settings cannot be trained: {error}")
        return None
    st.session_state.sn_config = config.to_dict()
    return config
