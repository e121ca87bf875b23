"""Shallow-net lab: inside a trained network, computed in numpy from its saved `.keras` file (no TensorFlow here)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from core.data import CLASS_NAMES
from core.shallow import inside
from core.shallow.network import Network, NetworkFileError
from pages.kernels.link import open_in_kernel_lab
from pages.shallow.results import test_images

MAP_ZOOM = 4  # A 28 x 28 map shown 112 pixels wide, like the gallery.
KERNEL_PIXELS = 84  # A kernel's side on screen, whatever its size.


@st.cache_resource(max_entries=8, show_spinner="Reading the trained weights...")
def load_network(config_json: str, model_path: str, modified_ns: int) -> Network:
    """The run's network; the file's modification time in the key rereads a model saved again."""
    return Network.from_file(json.loads(config_json), model_path)


def legend(scale: float, what: str) -> None:
    st.image(inside.colour_bar(224, 10), width=224)
    st.caption(f"Blue −{scale:.3g} · white 0 · red +{scale:.3g}: one colour scale for {what}.")


def maps(arrays, captions: list[str], scale: float, zoom: int = MAP_ZOOM) -> None:
    """Signed 2-D arrays as enlarged pictures in the diverging colours, all on `scale`."""
    st.image([inside.enlarge(inside.diverging_rgb(a, scale), zoom) for a in arrays], caption=captions)


def show_inside(config: dict, model_path, prefix: str, evaluation: dict | None = None) -> None:
    """What the run's network learned, from its `.keras` file: templates, neuron maps, or a CNN's kernels
    and feature maps; `evaluation` (the results) offers its most confident mistakes as test images."""
    with st.expander("Inside the trained network", icon=":material/neurology:"):
        if not model_path or not Path(model_path).is_file():
            st.info("This run has no saved model file, so there is nothing to look inside.")
            return
        try:
            modified = Path(model_path).stat().st_mtime_ns
            network = load_network(json.dumps(config, sort_keys=True), str(model_path), modified)
        except (NetworkFileError, OSError, ValueError) as error:
            st.error(f"Cannot read the trained network: {error}")
            return
        gallery = [mistake["index"] for mistake in (evaluation or {}).get("confident_mistakes", [])]
        if network.shape.architecture == "cnn":
            kernels_view(network, prefix, Path(model_path).stem.replace("-", " "))
            feature_maps_view(network, prefix, gallery)
            return
        if inside.collapses_to_templates(network):
            templates_view(network)
        neurons_view(network, prefix)


def templates_view(network: Network) -> None:
    templates, biases = inside.class_templates(network)
    st.markdown(
        "**The ten class templates.** Without an activation every layer is linear, so the whole network "
        "is one template per class: the score of a class is the sum over the 784 pixels of pixel × template, "
        "plus a bias. Red pixels push towards the class, blue ones away from it."
    )
    scale = inside.shared_scale(templates)
    maps(templates, [f"{CLASS_NAMES[c]} (bias {biases[c]:+.2f})" for c in range(10)], scale)
    legend(scale, "the ten templates")


def neurons_view(network: Network, prefix: str) -> None:
    per_pixel = network.shape.architecture == "article"
    count = inside.neuron_count(network)
    layer = len(network.shape.hidden_units) if per_pixel else 1
    st.markdown(
        f"**Neurons' weights as 28 × 28 maps** (hidden layer {layer}, {count:,} neurons). "
        + (
            "A per-pixel neuron has one output weight per pixel into each class: its map for the class chosen."
            if per_pixel
            else "An MLP neuron has one input weight per pixel: what it looks for in the image."
        )
    )
    left, right = st.columns([3, 1])
    neurons = left.multiselect(
        "Neurons (the largest weights first)",
        list(range(count)),
        default=inside.strongest_neurons(network),
        key=f"{prefix}_inside_neurons",
    )
    class_index = None
    if per_pixel:
        class_index = right.selectbox(
            "Into class", range(10), format_func=CLASS_NAMES.__getitem__, key=f"{prefix}_inside_class"
        )
    if not neurons:
        st.caption("Choose one or more neurons to see their maps.")
        return
    arrays = inside.neuron_maps(network, neurons, class_index)
    scale = inside.shared_scale(arrays)
    maps(arrays, [f"neuron {j}" for j in neurons], scale)
    legend(scale, "these maps")


def kernels_view(network: Network, prefix: str, source: str) -> None:
    shape = network.shape
    st.markdown(
        f"**Learned kernels** ({shape.filters} filters of {shape.kernel_size} × {shape.kernel_size} "
        f"per block). Each slides over its input like the kernel lab's edge detectors."
    )
    block = 1
    if shape.conv_blocks > 1:
        block = st.radio("Block", [1, 2], horizontal=True, key=f"{prefix}_inside_block")
    kernels = inside.conv_kernels(network, block)
    scale = inside.shared_scale(kernels)
    zoom = max(1, KERNEL_PIXELS // shape.kernel_size)
    channel = 0
    if kernels.shape[1] > 1:
        channel = st.selectbox(
            "Input channel (block 1's filter it reads)", range(kernels.shape[1]), key=f"{prefix}_inside_channel"
        )
    maps(kernels[:, channel], [f"filter {f}" for f in range(len(kernels))], scale, zoom)
    legend(scale, f"block {block}'s kernels")
    chosen = st.selectbox("Kernel as numbers: filter", range(len(kernels)), key=f"{prefix}_inside_filter")
    bias = float(network.weights[f"conv_{block}"][1][chosen])
    st.dataframe(pd.DataFrame(kernels[chosen, channel]).round(4), key=f"{prefix}_inside_kernel_table")
    st.caption(f"Filter {chosen}, input channel {channel}, block {block}; its bias is {bias:+.4f}.")
    name = f"CNN {source}, block {block} filter {chosen}" + (f" channel {channel}" if kernels.shape[1] > 1 else "")
    open_in_kernel_lab(kernels[chosen, channel], name, key=f"{prefix}_inside_open_kernel")


def feature_maps_view(network: Network, prefix: str, gallery: list[int]) -> None:
    st.markdown("**Feature maps of a test image**: after the convolution, after the activation, after pooling.")
    left, right = st.columns(2)
    index = left.number_input("Test image (index 0 to 9,999)", 0, 9999, 0, key=f"{prefix}_inside_image")
    if gallery:
        picked = right.selectbox(
            "Or one of the most confident mistakes", [None, *gallery], key=f"{prefix}_inside_gallery"
        )
        index = index if picked is None else picked
    image = test_images()[int(index)]
    probabilities = network.predict(image)[0]
    predicted = int(probabilities.argmax())
    st.image(inside.enlarge(image, MAP_ZOOM), caption=f"#{index}: {CLASS_NAMES[predicted]} {probabilities.max():.0%}")
    stages = inside.feature_maps(network, image)
    for name, arrays in stages.items():
        scale = inside.shared_scale(arrays)
        zoom = MAP_ZOOM * 28 // arrays.shape[1]
        st.markdown(f"`{name}` ({arrays.shape[1]} × {arrays.shape[2]} per filter)")
        maps(arrays, [f"filter {f}" for f in range(len(arrays))], scale, zoom)
        st.caption(f"Blue −{scale:.3g} · white 0 · red +{scale:.3g} (this stage's scale).")
