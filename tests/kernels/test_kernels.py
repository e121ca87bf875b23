"""Kernels: every preset and random kernels against scipy, known edges, pixel sums, display, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage, signal

from core import kernels
from core.images import load_image
from core.kernels import PRESETS, FilterSettings, correlate
from core.kernels import __main__ as kernels_cli
from core.kernels.correlation import _Correlator, _separate

SCIPY_MODES = {"same": "constant", "reflect": "reflect"}
ROOT = Path(__file__).resolve().parents[2]


def known_edges(height: int = 23, width: int = 31) -> np.ndarray:
    """A dark picture with a bright rectangle (rows 6-15, columns 9-21) and a diagonal ramp below it."""
    image = np.full((height, width), 20, np.uint8)
    image[6:16, 9:22] = 220
    rows, cols = np.mgrid[0:height, 0:width]
    image[17:] = np.clip(10 * (rows[17:] + cols[17:]) % 256, 0, 255)
    return image


def reference(image: np.ndarray, kernel: np.ndarray, mode: str, stride: int) -> np.ndarray:
    """scipy's answer: ndimage.correlate for same/reflect, signal.correlate2d for valid, then [::s, ::s]."""
    image = image.astype(np.float64)
    if mode == "valid":
        planes = image[:, :, None] if image.ndim == 2 else image
        out = np.stack([signal.correlate2d(planes[:, :, c], kernel, mode="valid") for c in range(planes.shape[2])], 2)
        out = out[:, :, 0] if image.ndim == 2 else out
    else:
        weights = kernel if image.ndim == 2 else kernel[:, :, None]
        out = ndimage.correlate(image, weights, mode=SCIPY_MODES[mode])
    return out[::stride, ::stride]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_matches_scipy_in_every_mode_and_stride(name):
    """Each preset, gray and RGB, same/reflect/valid, strides 1-3, equals scipy's correlation."""
    kernel = PRESETS[name].matrix
    gray = known_edges()
    rgb = np.stack([gray, gray[::-1], gray[:, ::-1]], axis=2)
    for image in (gray, rgb):
        for mode in kernels.MODES:
            for stride in (1, 2, 3):
                ours = correlate(image, kernel, mode, stride)
                expected = reference(image, kernel, mode, stride)
                assert ours.dtype == np.float32
                assert ours.shape == expected.shape, (mode, stride)
                np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-3, err_msg=f"{name} {mode} {stride}")


@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (1, 3), (3, 1), (7, 5), (1, 1), (9, 9)])
def test_random_kernels_match_scipy(shape):
    """Random real-valued kernels of many shapes on random float and uint8 images equal scipy."""
    rng = np.random.default_rng(sum(shape))
    kernel = rng.normal(size=shape)
    for image in (rng.integers(0, 256, (19, 26), dtype=np.uint8), rng.normal(size=(17, 12, 3)) * 50):
        for mode in kernels.MODES:
            for stride in (1, 2, 3):
                np.testing.assert_allclose(
                    correlate(image, kernel, mode, stride), reference(image, kernel, mode, stride), rtol=1e-4, atol=2e-3
                )


def test_random_rank_one_kernels_take_the_separable_path_and_match_scipy():
    """Outer products (separable kernels, computed as two 1-D passes) still equal scipy exactly enough."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    for size in (3, 5, 7):
        kernel = np.outer(rng.normal(size=size), rng.normal(size=size))
        assert _separate(kernel) is not None
        for mode in kernels.MODES:
            for stride in (1, 2, 3):
                np.testing.assert_allclose(
                    correlate(image, kernel, mode, stride), reference(image, kernel, mode, stride), rtol=1e-4, atol=2e-3
                )


def test_tiny_images_and_kernels_larger_than_the_image():
    """A 1x1 and a 2x3 image with a 5x5 kernel: zero padding and repeated reflection as scipy does."""
    kernel = np.arange(25, dtype=float).reshape(5, 5) - 12
    for image in (np.array([[7]], np.uint8), np.array([[1, 2, 3], [4, 5, 6]], np.uint8)):
        for mode in ("same", "reflect"):
            np.testing.assert_allclose(correlate(image, kernel, mode), reference(image, kernel, mode, 1), atol=1e-4)
    with pytest.raises(ValueError, match="smaller than the 5x5 kernel"):
        correlate(np.ones((3, 3)), kernel, "valid")


def test_many_bands_and_threads_give_the_same_answer(monkeypatch):
    """Tiny bands spread over 3 threads (every band border exercised) equal scipy and the 1-thread result."""
    monkeypatch.setattr(_Correlator, "BAND_BYTES", 4096)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (101, 67, 3), dtype=np.uint8)
    for name in ("sobel_x", "laplacian_8", "gaussian_blur", "emboss"):
        kernel = PRESETS[name].matrix
        for mode in kernels.MODES:
            for stride in (1, 2, 3):
                threaded = correlate(image, kernel, mode, stride, workers=3)
                np.testing.assert_array_equal(threaded, correlate(image, kernel, mode, stride, workers=1))
                np.testing.assert_allclose(threaded, reference(image, kernel, mode, stride), rtol=1e-5, atol=1e-3)


def test_sobel_x_and_v_find_the_edges_they_are_named_for():
    """On a vertical step edge Sobel x answers +4 x step and V (the article's) answers 0; rotated, the reverse."""
    step = np.zeros((9, 10), np.uint8)
    step[:, 5:] = 100  # Dark left half, bright right half: an edge running top to bottom.
    sobel_x = correlate(step, PRESETS["sobel_x"].matrix, "reflect")
    v = correlate(step, PRESETS["v"].matrix, "reflect")
    assert sobel_x[:, 4].tolist() == [400] * 9 and sobel_x[:, 5].tolist() == [400] * 9
    assert np.count_nonzero(sobel_x[:, [0, 1, 2, 3, 6, 7, 8, 9]]) == 0
    assert np.count_nonzero(v) == 0
    horizontal = step.T.copy()  # Dark top, bright bottom: an edge running left to right.
    assert np.count_nonzero(correlate(horizontal, PRESETS["h"].matrix, "reflect")) == 0
    assert correlate(horizontal, PRESETS["v"].matrix, "reflect")[4:6].min() == 400
    # Bright to dark the other way round flips the sign.
    assert correlate(100 - step, PRESETS["sobel_x"].matrix, "reflect")[:, 4:6].max() == -400


def test_v_and_h_are_transposes_and_blurs_keep_brightness():
    """The article's H is V transposed; blur weights sum to 1, edge kernels to 0."""
    np.testing.assert_array_equal(PRESETS["h"].matrix, PRESETS["v"].matrix.T)
    for name in ("box_blur", "gaussian_blur", "sharpen", "identity", "emboss"):
        assert PRESETS[name].matrix.sum() == pytest.approx(1)
    for name in ("v", "h", "sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "scharr_x", "scharr_y"):
        assert PRESETS[name].matrix.sum() == 0
    for name, kernel in PRESETS.items():
        if kernel.partner:
            assert PRESETS[kernel.partner].partner == name


def test_same_mode_zero_padding_shows_at_the_border():
    """Zero padding makes a flat bright image look like it has an edge at the border; reflect does not."""
    flat = np.full((6, 7), 50, np.uint8)
    zero = correlate(flat, PRESETS["sobel_x"].matrix, "same")
    assert zero[2, 0] == 200 and zero[2, -1] == -200  # (1 + 2 + 1) x 50 against zeros. and zero[2, 3] == 0
    assert np.count_nonzero(correlate(flat, PRESETS["sobel_x"].matrix, "reflect")) == 0


def test_output_shapes_for_modes_and_strides():
    """same/reflect give ceil(n / stride); valid gives floor((n - k) / stride) + 1."""
    image = np.zeros((10, 7), np.uint8)
    assert correlate(image, np.ones((3, 3)), "same", 3).shape == (4, 3)
    assert correlate(image, np.ones((3, 5)), "valid", 1).shape == (8, 3)
    assert correlate(image, np.ones((3, 3)), "valid", 2).shape == (4, 3)
    assert kernels.output_shape(3000, 4000, (3, 3), "same", 2) == (1500, 2000)


def test_convolution_is_correlation_with_the_kernel_flipped():
    """convolve equals scipy.ndimage.convolve, and for Sobel x it is correlation with the sign flipped."""
    image = known_edges()
    for name in ("sobel_x", "emboss", "v"):
        kernel = PRESETS[name].matrix
        np.testing.assert_allclose(
            kernels.convolve(image, kernel), ndimage.convolve(image.astype(float), kernel, mode="constant"), atol=1e-3
        )
    sobel = PRESETS["sobel_x"].matrix
    np.testing.assert_array_equal(kernels.convolve(image, sobel), -correlate(image, sobel))
    np.testing.assert_array_equal(kernels.flip(PRESETS["emboss"].matrix), PRESETS["emboss"].matrix[::-1, ::-1])


def test_explain_pixel_sums_to_the_output_everywhere():
    """For every output pixel, mode and stride, the products' sum equals correlate's value."""
    image = known_edges(9, 11)
    for kernel in (PRESETS["sobel_y"].matrix, PRESETS["gaussian_blur"].matrix):
        for mode in kernels.MODES:
            for stride in (1, 2, 3):
                output = correlate(image, kernel, mode, stride)
                for (row, col), value in np.ndenumerate(output):
                    step = kernels.explain_pixel(image, kernel, row, col, mode, stride)
                    assert step.total == pytest.approx(float(value), abs=1e-3)
                    np.testing.assert_array_equal(step.products, step.patch * kernel)


def test_explain_pixel_at_the_corner_marks_padding():
    """At output (0, 0) of a 'same' 3x3, the top row and left column are zeros outside the photo."""
    image = np.arange(1, 26, dtype=np.uint8).reshape(5, 5)
    step = kernels.explain_pixel(image, PRESETS["box_blur"].matrix, 0, 0, "same")
    assert (step.centre_row, step.centre_col) == (0, 0)
    assert step.outside.tolist() == [[True, True, True], [True, False, False], [True, False, False]]
    assert step.patch.tolist() == [[0, 0, 0], [0, 1, 2], [0, 6, 7]]
    reflected = kernels.explain_pixel(image, PRESETS["box_blur"].matrix, 0, 0, "reflect")
    assert reflected.patch.tolist() == [[1, 1, 2], [1, 1, 2], [6, 6, 7]]
    valid = kernels.explain_pixel(image, PRESETS["identity"].matrix, 1, 1, "valid", 2)
    assert (valid.centre_row, valid.centre_col) == (3, 3)  # Windows start at 0, 2: centres at 1, 3.
    assert valid.total == image[3, 3]
    assert valid.equation() == "(19 × 1) = 19"
    with pytest.raises(ValueError, match="outside"):
        kernels.explain_pixel(image, PRESETS["box_blur"].matrix, 5, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[1,0,-1],[2,0,-2],[1,0,-1]]", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("1 0 -1; 2 0 -2; 1 0 -1", [[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        ("1/9 1/9 1/9\n1/9 1/9 1/9\n1/9 1/9 1/9", [[1 / 9] * 3] * 3),
        ("[[ 0.5, -1e-1, 2 ]]", [[0.5, -0.1, 2]]),
        ("[[\u22121, 0, 1]]", [[-1, 0, 1]]),
    ],
)
def test_parse_kernel_reads_lists_rows_and_fractions(text, expected):
    """Nested lists, rows separated by ';' or newlines, fractions and a typographic minus are read."""
    np.testing.assert_allclose(kernels.parse_kernel(text), expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[1,0],[2,0]]", "odd number of rows and columns"),
        ("[[1,0,-1],[2,0]]", "same number of entries"),
        ("[[1,x,-1],[2,0,-2],[1,0,-1]]", "Row 1, column 2: 'x' is not a number"),
        ("1 0 nan; 1 1 1; 1 1 1", "not a finite number"),
        ("1 1 1/0; 1 1 1; 1 1 1", "is not a number"),
        ("", "empty"),
        ("[1, 2, 3]", "not a matrix"),
        (str(np.ones((17, 17)).tolist()), "up to 15x15"),
    ],
)
def test_bad_kernels_get_messages_that_say_what_is_wrong(text, message):
    """Every malformed kernel raises ValueError naming the problem (and the row and column)."""
    with pytest.raises(ValueError, match=message):
        kernels.parse_kernel(text)


def test_kernel_from_cells_names_the_empty_cell():
    """The page's grid: an empty cell is reported by row and column."""
    with pytest.raises(ValueError, match="Row 2, column 3: the entry is empty"):
        kernels.kernel_from_cells([["1", "2", "3"], ["4", "5", " "], ["7", "8", "9"]])
    assert kernels.kernel_from_cells([["-1", "0", "1/2"]]).tolist() == [[-1, 0, 0.5]]


def test_settings_are_validated():
    """Unknown modes and colours, and strides below 1, are refused with a usable message."""
    with pytest.raises(ValueError, match="mode must be one of same, reflect, valid"):
        FilterSettings(mode="wrap")
    with pytest.raises(ValueError, match="stride must be a whole number"):
        FilterSettings(stride=0)
    with pytest.raises(ValueError, match="color must be one of gray, rgb"):
        FilterSettings(color="cmyk")


def test_find_preset_accepts_spellings_and_lists_names():
    """'Sobel-X' and 'sobel x' find sobel_x; an unknown name lists the choices."""
    assert kernels.find_preset("Sobel-X") is PRESETS["sobel_x"]
    assert kernels.find_preset("sobel x") is PRESETS["sobel_x"]
    with pytest.raises(ValueError, match="choose one of v, h, sobel_x"):
        kernels.find_preset("canny")


def test_gray_is_pillow_convert_l_and_apply_kernel_uses_it():
    """to_gray equals Pillow's convert('L') and the loader's mode='L'; 'rgb' filters three channels."""
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    gray = kernels.to_gray(rgb)
    np.testing.assert_array_equal(gray, np.asarray(Image.fromarray(rgb).convert("L")))
    kernel = PRESETS["laplacian_4"].matrix
    np.testing.assert_array_equal(kernels.apply_kernel(rgb, kernel), correlate(gray, kernel))
    assert kernels.apply_kernel(rgb, kernel, FilterSettings(color="rgb")).shape == (12, 14, 3)


def test_gradient_magnitude_is_the_length_of_the_gradient():
    """filter_image with a partner is sqrt(Gx^2 + Gy^2) of the pair."""
    image = known_edges()
    settings = FilterSettings(mode="reflect")
    gx, gy = (correlate(image, PRESETS[name].matrix, "reflect") for name in ("sobel_x", "sobel_y"))
    magnitude = kernels.filter_image(image, PRESETS["sobel_x"].matrix, settings, PRESETS["sobel_y"].matrix)
    np.testing.assert_allclose(magnitude, np.sqrt(gx.astype(float) ** 2 + gy.astype(float) ** 2), rtol=1e-6)


def test_display_keeps_negative_responses_visible():
    """Signed: zero is black, positive orange, negative blue; absolute and clip as documented."""
    response = np.array([[-10.0, 0.0, 10.0, 5.0]], np.float32)
    picture, limit = kernels.to_display(response, "signed", limit=10)
    assert picture.shape == (1, 4, 3) and limit == 10
    assert picture[0, 1].tolist() == [0, 0, 0]
    assert picture[0, 2].tolist() == kernels.POSITIVE_COLOR.astype(int).tolist()
    assert picture[0, 0].tolist() == kernels.NEGATIVE_COLOR.astype(int).tolist()
    assert picture[0, 3, 0] == 128  # Half the limit, half the brightness.
    assert kernels.to_display(response, "absolute", limit=10)[0].tolist() == [[255, 0, 255, 127]]
    assert kernels.to_display(np.array([[-3.0, 100.4, 300.0]]), "clip")[0].tolist() == [[0, 100, 255]]
    rgb, _ = kernels.to_display(np.zeros((2, 2, 3), np.float32), "signed", limit=1)
    assert (rgb == 128).all()
    assert kernels.response_limit(np.zeros((3, 3))) > 0
    with pytest.raises(ValueError, match="scaling must be one of"):
        kernels.to_display(response, "log")


def test_fit_within_bounds_the_longer_side():
    """A 2000x1000 picture is shown at 720x360; a small one is left as it is."""
    big = np.zeros((1000, 2000, 3), np.uint8)
    assert kernels.fit_within(big, 720).shape == (360, 720, 3)
    small = np.zeros((30, 40), np.uint8)
    assert kernels.fit_within(small, 720) is small


def test_locate_outlines_the_kernel_footprint():
    """The close-up is centred on the pixel with a red box of the kernel's size; outside is grey."""
    image = np.full((20, 20), 200, np.uint8)
    step = kernels.explain_pixel(image, PRESETS["sobel_x"].matrix, 0, 0)
    close_up = kernels.locate(image, step, radius=4, size=90)
    assert close_up.shape == (90, 90, 3)
    assert close_up[0, 0].tolist() == [128, 128, 128]  # Above-left of the photo.
    assert close_up[30, 45].tolist() == [230, 30, 30]  # The box's top edge (rows 30-59 at 10 px a cell).
    assert close_up[45, 45].tolist() == [200, 200, 200]


def test_learned_filter_helpers():
    """A Sobel-x-like RGB filter is matched to Sobel x; a layer's filters tile into one picture."""
    sobel = PRESETS["sobel_x"].matrix
    filter_weights = np.stack([sobel * 0.1, sobel * 0.2, sobel * 0.05], axis=2)
    like, similarity = kernels.nearest_preset(filter_weights)
    assert like.name == "sobel_x" and similarity == pytest.approx(1)
    layer = np.random.default_rng(0).normal(size=(3, 3, 3, 32)).astype(np.float32)
    sheet = kernels.filter_sheet(layer, cell=36, gap=6, columns=8)
    assert sheet.shape == (4 * 42 + 6, 8 * 42 + 6, 3)
    picture = kernels.filter_picture(filter_weights)
    assert picture[1, 1].tolist() == [128, 128, 128] and picture[1, 2, 1] == 255


def test_correlate_channels_is_one_conv2d_filter():
    """Summing per-channel correlations equals scipy's 3-D correlation's middle plane (a Conv2D filter)."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (15, 18, 3), dtype=np.uint8)
    weights = rng.normal(size=(3, 3, 3))
    expected = ndimage.correlate(image.astype(float), weights, mode="constant")[:, :, 1]
    np.testing.assert_allclose(kernels.correlate_channels(image, weights), expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(kernels.correlate_channels(image, weights, stride=2), expected[::2, ::2], atol=1e-3)


# The command line.


@pytest.fixture
def photo_file(tmp_path):
    rng = np.random.default_rng(11)
    pixels = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_cli_apply_matrix_raw_equals_scipy_on_the_grayscale_image(photo_file, tmp_path, capsys):
    """apply with a MATRIX and --raw writes the float32 response scipy computes on convert('L')."""
    out, raw = tmp_path / "out.png", tmp_path / "raw.npy"
    matrix = "[[1,0,-1],[2,0,-2],[1,0,-1]]"
    assert kernels_cli.main(["apply", str(photo_file), str(out), "--kernel", matrix, "--raw", str(raw)]) == 0
    gray = np.asarray(Image.open(photo_file).convert("L"), dtype=np.float64)
    expected = ndimage.correlate(gray, np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float), mode="constant")
    response = np.load(raw)
    assert response.dtype == np.float32
    np.testing.assert_array_equal(response, expected)
    written = load_image(out)
    assert written.shape == (21, 30, 3)
    assert "out.png: 30x21, from -" in capsys.readouterr().out
    # The page's download is the same picture.
    settings = FilterSettings()
    downloaded = kernels.render_png(load_image(photo_file, "L"), kernels.parse_kernel(matrix), settings)
    np.testing.assert_array_equal(load_image(downloaded), written)


def test_cli_apply_preset_rgb_valid_stride(photo_file, tmp_path):
    """A preset name with --color rgb --mode valid --stride 2 gives the strided valid response per channel."""
    raw = tmp_path / "raw.npy"
    args = ["apply", str(photo_file), str(tmp_path / "o.png"), "--kernel", "gaussian_blur", "--raw", str(raw)]
    assert kernels_cli.main([*args, "--color", "rgb", "--mode", "valid", "--stride", "2"]) == 0
    response = np.load(raw)
    pixels = np.asarray(Image.open(photo_file), dtype=np.float64)
    assert response.shape == (9, 13, 3)
    np.testing.assert_allclose(response, reference(pixels, PRESETS["gaussian_blur"].matrix, "valid", 2), atol=1e-3)
    # The PNG of a blur is the blurred picture itself (clipped to 0-255).
    np.testing.assert_array_equal(load_image(tmp_path / "o.png"), np.clip(np.rint(response), 0, 255))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kernel", "canny"], "no preset called 'canny'"),
        (["--kernel", "[[1,2],[3,4]]"], "odd number of rows"),
        (["--kernel", "sobel_x", "--stride", "0"], "stride must be a whole number"),
    ],
)
def test_cli_refuses_bad_kernels_and_settings(photo_file, tmp_path, capsys, args, message):
    """Bad kernels and strides exit with status 1 and a message, writing nothing."""
    out = tmp_path / "out.png"
    assert kernels_cli.main(["apply", str(photo_file), str(out), *args]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40], ids=["empty", "text", "truncated"]
)
def test_cli_reports_broken_images(tmp_path, capsys, content):
    """Empty, non-image and truncated files give the safe loader's message and status 1."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(content)
    assert kernels_cli.main(["apply", str(broken), str(tmp_path / "o.png"), "--kernel", "v"]) == 1
    assert "'broken.png'" in capsys.readouterr().err


def test_cli_as_a_module_lists_every_preset_with_its_matrix():
    """`python -m core.kernels list` prints each preset's name and matrix rows."""
    result = subprocess.run(
        [sys.executable, "-m", "core.kernels", "list"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    for name in PRESETS:
        assert f"\n{name}  (" in "\n" + result.stdout
    assert "-10    0   10" in result.stdout  # Scharr x's middle row.
    assert "1/256 x" in result.stdout
