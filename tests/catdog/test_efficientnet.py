"""core.catdog.efficientnet: the EfficientNet-Lite0 architecture and the weight port."""

from __future__ import annotations

import numpy as np
import pytest

from core.catdog.efficientnet import (
    LITE0_STAGES,
    StageSpec,
    block_specs,
    build_model,
    count_parameters,
    packaged_pth_path,
    port_weights,
)
from core.catdog.pth import load_state_dict


@pytest.fixture(scope="module")
def state():
    return load_state_dict(packaged_pth_path())


def test_sixteen_blocks_with_the_published_widths():
    """Lite0 unrolls to 16 MBConv blocks ending at 320 channels, strides 2 five times in all."""
    blocks = block_specs()
    assert len(blocks) == 16
    assert blocks[0] == (32, 16, 3, 1, 1)
    assert blocks[-1] == (192, 320, 3, 1, 6)
    assert sum(stride == 2 for *_rest, stride, _expand in blocks) == 4  # plus the stem: 224 -> 7


def test_parameter_count_by_hand_and_from_the_checkpoint(state):
    """Keras' count equals the hand count and the checkpoint's tensors; 4.65 M of them are trained."""
    model = build_model()
    checkpoint_weights = sum(array.size for name, array in state.items() if not name.endswith("num_batches_tracked"))
    assert model.count_params() == count_parameters() == checkpoint_weights == 4_694_024
    # Batch norm's moving mean and variance are statistics, not trained: the published 4.65 M.
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    batch_norm_channels = sum(array.size for name, array in state.items() if name.endswith("running_mean"))
    assert trainable == checkpoint_weights - 2 * batch_norm_channels == 4_652_008
    assert model.output_shape == (None, 1000)
    assert model.get_layer("top_activation").output.shape == (None, 7, 7, 1280)


def test_port_copies_every_tensor_transposed(state):
    """After the port, a conv, a depthwise conv, a batch norm and the dense layer hold the .pth values."""
    model = build_model()
    port_weights(model, state)
    np.testing.assert_array_equal(
        model.get_layer("stem_conv").get_weights()[0], state["_conv_stem.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(
        model.get_layer("block5_dwconv").get_weights()[0][:, :, 7, 0], state["_blocks.5._depthwise_conv.weight"][7, 0]
    )
    gamma, beta, mean, variance = model.get_layer("block9_expand_bn").get_weights()
    np.testing.assert_array_equal(variance, state["_blocks.9._bn0.running_var"])
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_array_equal(kernel, state["_fc.weight"].T)
    np.testing.assert_array_equal(bias, state["_fc.bias"])


def test_port_refuses_a_checkpoint_with_missing_or_extra_tensors(state):
    """A state dict from another network is refused with a message naming the tensor."""
    model = build_model()
    incomplete = {name: array for name, array in state.items() if name != "_fc.bias"}
    with pytest.raises(ValueError, match="_fc.bias"):
        port_weights(model, incomplete)
    with pytest.raises(ValueError, match="does not use"):
        port_weights(model, {**state, "_extra.weight": np.zeros(3, np.float32)})


def test_stage_spec_validates():
    """An impossible stage raises ValueError with what is wrong."""
    with pytest.raises(ValueError, match="kernel_size"):
        StageSpec(repeats=1, kernel_size=4, stride=1, expand_ratio=6, output_filters=8)
    with pytest.raises(ValueError, match="stride"):
        StageSpec(repeats=1, kernel_size=3, stride=3, expand_ratio=6, output_filters=8)
    assert len(LITE0_STAGES) == 7
