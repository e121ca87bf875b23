"""The full-size download in bands of rows: the same numbers and the same PNG pixels as the whole photo."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from core import kernels
from core.kernels import PRESETS, FilterSettings

RNG = np.random.default_rng(12)
KERNELS = {
    "1x1": np.array([[2.5]]),
    "sobel 3x3 (separable)": PRESETS["sobel_x"].matrix,
    "gaussian 5x5 (separable)": PRESETS["gaussian_blur"].matrix,
    "random 3x5": RNG.normal(size=(3, 5)),
    "random 7x1": RNG.normal(size=(7, 1)),
    "random 1x7": RNG.normal(size=(1, 7)),
    "random 15x15": RNG.normal(size=(15, 15)),
}


def photo(height: int, width: int, channels: int | None = 3, seed: int = 0) -> np.ndarray:
    """Smooth shapes plus noise, so that every kernel and every PNG filter has work to do."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = 128 + 90 * np.sin(rows / 7.0) * np.cos(cols / 11.0)
    noise = np.random.default_rng(seed).normal(0, 25, (height, width, channels or 1))
    picture = np.clip(base[:, :, None] + noise, 0, 255).astype(np.uint8)
    return picture[:, :, 0] if channels is None else picture


def joined(blocks) -> np.ndarray:
    """The blocks put back together, checking that each starts where the previous one ended."""
    parts, expected_first = [], 0
    for first, block in blocks:
        assert first == expected_first
        parts.append(block)
        expected_first += block.shape[0]
    return np.concatenate(parts)


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def untiled_png(image, kernel, settings, partner, scaling) -> bytes:
    """The download as it was made before: the whole response in float32, then one PNG."""
    return kernels.encode_png(kernels.to_display(kernels.filter_image(image, kernel, settings, partner), scaling)[0])


@pytest.mark.parametrize("name", KERNELS)
def test_bands_equal_the_whole_correlation_exactly(name):
    """Every mode, stride 1-3, gray and RGB, blocks of 1, 4 and 10 rows: the same float32 bits."""
    kernel = KERNELS[name]
    for mode, stride, channels, band_rows in itertools.product(kernels.MODES, (1, 2, 3), (None, 3), (1, 4, 10)):
        image = photo(41, 37, channels, seed=stride)
        whole = kernels.correlate(image, kernel, mode, stride)
        tiled = joined(kernels.correlate_bands(image, kernel, mode, stride, band_rows=band_rows))
        assert tiled.dtype == np.float32 and tiled.shape == whole.shape, (mode, stride, channels, band_rows)
        assert np.array_equal(tiled, whole), (name, mode, stride, channels, band_rows)


def test_bands_match_scipy_at_the_borders():
    """Independently of our whole-image path: blocks of 3 rows against scipy.ndimage.correlate."""
    image = photo(29, 23, None)
    kernel = KERNELS["random 3x5"]
    for mode, scipy_mode in (("same", "constant"), ("reflect", "reflect")):
        tiled = joined(kernels.correlate_bands(image, kernel, mode, 2, band_rows=3))
        expected = ndimage.correlate(image.astype(np.float64), kernel, mode=scipy_mode)[::2, ::2]
        np.testing.assert_allclose(tiled, expected, rtol=1e-5, atol=1e-3)
    valid = joined(kernels.correlate_bands(image, KERNELS["random 7x1"], "valid", 3, band_rows=2))
    expected = ndimage.correlate(image.astype(np.float64), KERNELS["random 7x1"], mode="constant")[3:-3][::3, ::3]
    np.testing.assert_allclose(valid, expected, rtol=1e-5, atol=1e-3)


def test_gradient_magnitude_in_bands_equals_the_whole():
    """filter_bands with a partner kernel gives sqrt(Gx^2 + Gy^2) block by block, bit for bit."""
    image = photo(45, 38)
    for mode, stride, color in itertools.product(kernels.MODES, (1, 2, 3), kernels.COLORS):
        settings = FilterSettings(mode=mode, stride=stride, color=color)
        for x_name, y_name in (("sobel_x", "sobel_y"), ("scharr_x", "scharr_y")):
            whole = kernels.filter_image(image, PRESETS[x_name].matrix, settings, PRESETS[y_name].matrix)
            tiled = joined(
                kernels.filter_bands(image, PRESETS[x_name].matrix, settings, PRESETS[y_name].matrix, band_rows=4)
            )
            assert np.array_equal(tiled, whole), (mode, stride, color, x_name)


def test_banded_limit_takes_the_same_samples_as_response_limit():
    """On 2.1 million values (every second one sampled) the banded 99th percentile is the same number."""
    image = photo(1500, 1400, None)
    response = kernels.correlate(image, PRESETS["laplacian_8"].matrix)
    for band_rows in (1, 37, 1500):
        blocks = kernels.correlate_bands(image, PRESETS["laplacian_8"].matrix, band_rows=band_rows)
        assert kernels.banded_limit(blocks, response.size) == kernels.response_limit(response)
    flat = np.zeros((30, 5), np.float32)  # One edge pixel: the percentile is 0, so the maximum is used.
    flat[11, 2] = -7.0
    assert kernels.banded_limit([(0, flat[:12]), (12, flat[12:])], 150) == kernels.response_limit(flat) == 7.0
    with pytest.raises(ValueError, match="150"):
        kernels.banded_limit([(0, flat[:12])], 150)


@pytest.mark.parametrize("scaling", list(kernels.SCALINGS))
def test_render_png_in_bands_has_the_pixels_of_the_whole(scaling):
    """Every display, mode, stride and colour, with and without a partner: the same PNG pixels."""
    image = photo(53, 47)
    for mode, stride, color, magnitude in itertools.product(kernels.MODES, (1, 2, 3), kernels.COLORS, (False, True)):
        settings = FilterSettings(mode=mode, stride=stride, color=color)
        kernel = PRESETS["v"].matrix if magnitude else KERNELS["random 3x5"]
        partner = PRESETS["h"].matrix if magnitude else None
        expected = decoded(untiled_png(image, kernel, settings, partner, scaling))
        for band_rows in (1, 6, None):
            tiled = decoded(kernels.render_png(image, kernel, settings, partner, scaling, band_rows=band_rows))
            assert np.array_equal(tiled, expected), (mode, stride, color, magnitude, band_rows)


def test_render_png_of_a_large_response_uses_the_sampled_limit():
    """A 1600x1400 photo (2.2 million values, so the limit is sampled) in 50-row blocks: same pixels."""
    image = photo(1600, 1400, None, seed=3)
    settings = FilterSettings(mode="reflect")
    expected = decoded(untiled_png(image, PRESETS["sobel_y"].matrix, settings, PRESETS["sobel_x"].matrix, "absolute"))
    tiled = kernels.render_png(
        image, PRESETS["sobel_y"].matrix, settings, PRESETS["sobel_x"].matrix, "absolute", band_rows=50
    )
    assert np.array_equal(decoded(tiled), expected)


def test_even_kernels_and_bad_bands_are_refused_before_any_work():
    """Kernels need odd sides in every path; band_rows must be a positive whole number."""
    image = photo(20, 20)
    for kernel in (np.ones((2, 2)), np.ones((3, 4))):
        with pytest.raises(ValueError, match="odd number of rows and columns"):
            kernels.correlate_bands(image, kernel)
        with pytest.raises(ValueError, match="odd number of rows and columns"):
            kernels.render_png(image, kernel, FilterSettings())
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="band_rows"):
            kernels.correlate_bands(image, np.ones((3, 3)), band_rows=bad)
    with pytest.raises(ValueError, match="smaller than the"):
        kernels.render_png(image[:5], np.ones((7, 7)), FilterSettings(mode="valid"))
    with pytest.raises(ValueError, match="scaling"):
        kernels.render_png(image, np.ones((3, 3)), FilterSettings(), scaling="loud")


@pytest.mark.parametrize("png_filter", range(5))
def test_png_writer_each_filter_reads_back_exactly(png_filter):
    """Each PNG filter type (none, sub, up, average, Paeth) alone, gray and RGB, bands of 1 to 70 rows."""
    for channels in (None, 3):
        picture = photo(151, 67, channels, seed=png_filter)
        bands = [picture[:1], picture[1:71], picture[71:140], picture[140:]]
        png = kernels.encode_png_bands(bands, 151, filters=[png_filter])
        assert np.array_equal(decoded(png), picture)
        assert Image.open(io.BytesIO(png)).mode == ("L" if channels is None else "RGB")


def test_png_writer_compresses_like_pillow():
    """With the adaptive filter choice the file is within 10% of Pillow's at the same zlib level."""
    picture = photo(300, 400)
    ours = kernels.encode_png_bands([picture[:150], picture[150:]], 300)
    assert np.array_equal(decoded(ours), picture)
    assert len(ours) < 1.1 * len(kernels.encode_png(picture))


def test_png_writer_refuses_bands_that_do_not_fit():
    """Wrong total height, a change of width or channels, or float data each say what is wrong."""
    picture = photo(10, 8)
    with pytest.raises(ValueError, match="hold 10 rows, not the picture's 12"):
        kernels.encode_png_bands([picture], 12)
    with pytest.raises(ValueError, match="does not continue"):
        kernels.encode_png_bands([picture, picture[:, :4]], 20)
    with pytest.raises(ValueError, match="does not continue"):
        kernels.encode_png_bands([picture, picture[:, :, 0]], 20)
    with pytest.raises(ValueError, match="uint8"):
        kernels.encode_png_bands([picture.astype(np.float32)], 10)
    with pytest.raises(ValueError, match="hold 0 rows"):
        kernels.encode_png_bands([], 10)
