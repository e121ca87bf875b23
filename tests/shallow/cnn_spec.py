"""The shallow CNN of issue 19's spec, built in Keras for tests until `build_model` makes it.

Layer names and initialisers as the spec fixes them: image -> (conv_i -> activation_i -> pool_i
-> dropout_i) per block -> flatten -> classes. `CnnSettings` carries the settings `TrainingConfig`
will have (`filters`, `kernel_size`, `conv_blocks`), so `Network` reads them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.shallow.config import ACTIVATIONS, IMAGE_SHAPE, NUM_CLASSES


@dataclass(frozen=True)
class CnnSettings:
    architecture: str = "cnn"
    activation: str = "relu"
    dropout: float = 0.2
    filters: int = 3
    kernel_size: int = 3
    conv_blocks: int = 1
    seed: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def build_cnn(settings: CnnSettings):
    """The spec's Keras CNN for `settings`, not compiled."""
    import keras

    inputs = keras.Input(IMAGE_SHAPE, name="image")
    x = inputs
    for index in range(1, settings.conv_blocks + 1):
        x = keras.layers.Conv2D(
            settings.filters,
            settings.kernel_size,
            padding="same",
            kernel_initializer="glorot_uniform",
            bias_initializer="zeros",
            name=f"conv_{index}",
        )(x)
        factory = ACTIVATIONS[settings.activation][1]
        if factory is not None:
            x = factory(keras, name=f"activation_{index}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool_{index}")(x)
        x = keras.layers.Dropout(settings.dropout, name=f"dropout_{index}", seed=settings.seed + index)(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="shallow_cnn")
