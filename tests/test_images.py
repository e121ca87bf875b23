"""The safe image loader: every input kind, every colour mode, and every kind of bad file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.images import DISPLAY_MAX_SIDE, ImageError, fit_for_display, for_display, load_image, pad_to_aspect


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient_rgb(width=40, height=30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, np.full_like(x, 128)], axis=-1))


def test_bytes_path_and_file_object_give_the_same_pixels(tmp_path):
    """Bytes, a path and an open binary file all decode to the same RGB array."""
    raw = encode(gradient_rgb())
    (tmp_path / "g.png").write_bytes(raw)
    from_bytes = load_image(raw)
    from_path = load_image(tmp_path / "g.png")
    with open(tmp_path / "g.png", "rb") as stream:
        from_file = load_image(stream)
    assert from_bytes.shape == (30, 40, 3) and from_bytes.dtype == np.uint8
    np.testing.assert_array_equal(from_bytes, from_path)
    np.testing.assert_array_equal(from_bytes, from_file)
    np.testing.assert_array_equal(from_bytes, np.asarray(gradient_rgb()))


def test_grayscale_mode_matches_pillow_convert_l():
    """mode="L" returns (H, W) equal to Pillow's own convert("L")."""
    image = gradient_rgb()
    gray = load_image(encode(image), mode="L")
    assert gray.shape == (30, 40)
    np.testing.assert_array_equal(gray, np.asarray(image.convert("L")))


def test_exif_orientation_is_applied():
    """A JPEG whose EXIF says 'rotate 90' comes out upright (width and height swapped)."""
    image = Image.new("RGB", (60, 20), "white")
    image.paste((255, 0, 0), (0, 0, 10, 20))  # A red band on the left edge as stored.
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    array = load_image(encode(image, "JPEG", exif=exif, quality=95))
    assert array.shape == (60, 20, 3)
    # After a clockwise turn the stored left edge is at the top.
    assert array[2, 10, 0] > 200 and array[2, 10, 1] < 80
    assert array[-2, 10].min() > 200


def test_rgba_is_composited_onto_white():
    """Fully transparent pixels become white, opaque ones keep their colour."""
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5] = (0, 0, 255, 255)
    rgba[:, 5:] = (255, 0, 0, 0)
    array = load_image(encode(Image.fromarray(rgba, "RGBA")))
    assert array[0, 0].tolist() == [0, 0, 255]
    assert array[0, 9].tolist() == [255, 255, 255]


def test_half_transparent_black_becomes_mid_grey():
    """A 50% transparent black pixel blends with white to about 128."""
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 128
    assert abs(int(load_image(encode(Image.fromarray(rgba, "RGBA")))[0, 0, 0]) - 127) <= 1


def test_la_and_palette_with_transparency_go_onto_white():
    """Grey+alpha and a palette image with a transparent index both end on white."""
    la = Image.fromarray(np.stack([np.zeros((6, 6), np.uint8), np.zeros((6, 6), np.uint8)], -1), "LA")
    assert load_image(encode(la), mode="L").tolist() == [[255] * 6] * 6
    palette = Image.new("P", (6, 6), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 3, 6))
    raw = encode(palette, "PNG", transparency=0)
    array = load_image(raw)
    assert array[0, 0].tolist() == [255, 0, 0] and array[0, 5].tolist() == [255, 255, 255]


def test_cmyk_is_converted_to_rgb():
    """A CMYK JPEG decodes to RGB with the right hue."""
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # Pure red in CMYK.
    array = load_image(encode(cmyk, "JPEG", quality=95))
    assert array.shape == (16, 16, 3)
    red, green, blue = array[8, 8].tolist()
    assert red > 200 and green < 60 and blue < 60


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits():
    """A 16-bit PNG keeps its tones: 0 -> 0, 32896 -> 128, 65535 -> 255."""
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    gray = load_image(encode(image), mode="L")
    assert gray.tolist() == [[0, 128, 255]]
    rgb = load_image(encode(image))
    assert rgb.shape == (1, 3, 3) and rgb[0, :, 0].tolist() == [0, 128, 255]


def test_float_tiff_is_scaled():
    """A float (mode F) image in [0, 1] is scaled to 0-255."""
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert load_image(encode(image, "TIFF"), mode="L").tolist() == [[0, 128, 255]]


def test_one_bit_image():
    """A 1-bit black-and-white image comes out as 0 and 255."""
    image = Image.new("1", (4, 2), 0)
    image.putpixel((1, 0), 1)
    assert load_image(encode(image), mode="L").tolist() == [[0, 255, 0, 0], [0, 0, 0, 0]]


def test_animated_gif_gives_its_first_frame():
    """An animated GIF decodes to its first frame only."""
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    raw = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    array = load_image(raw)
    assert array.shape == (8, 8, 3)
    assert array[4, 4, 0] > 200 and array[4, 4, 1] < 50


def test_webp_and_bmp_are_read():
    """Other common formats decode too."""
    for fmt in ("WEBP", "BMP", "TIFF"):
        assert load_image(encode(gradient_rgb(), fmt)).shape == (30, 40, 3)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"", "empty"),
        (b"just some text, not a picture", "not an image"),
        (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "damaged|truncated|not an image"),
    ],
)
def test_non_images_raise_image_error(raw, expected):
    """Empty, text, PDF and header-only files each raise ImageError with a readable reason."""
    with pytest.raises(ImageError, match=expected):
        load_image(raw)


def test_truncated_jpeg_and_png_raise_image_error():
    """Files cut in half (an interrupted upload) raise ImageError saying so."""
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    for fmt in ("JPEG", "PNG"):
        raw = encode(noisy, fmt)
        with pytest.raises(ImageError, match="truncated|corrupt|damaged"):
            load_image(raw[: len(raw) // 2])


def test_corrupt_middle_raises_image_error():
    """Garbage in the middle of a PNG (a bad CRC) is reported, not crashed on."""
    raw = bytearray(encode(gradient_rgb(200, 200)))
    raw[200:260] = b"\xff" * 60
    with pytest.raises(ImageError):
        load_image(bytes(raw))


def test_image_error_is_a_value_error():
    """Callers can catch ImageError as a ValueError."""
    assert issubclass(ImageError, ValueError)


def test_decompression_bomb_is_refused_before_decoding():
    """A tiny file that claims a huge canvas is refused by its header, naming the size."""
    for side in (9000, 14000):  # 81 MP (our limit), 196 MP (also past Pillow's own bomb limit).
        bomb = encode(Image.new("L", (side, side), 0))
        assert len(bomb) < 1_000_000
        with pytest.raises(ImageError, match="megapixel"):
            load_image(bomb)


def test_pixel_and_byte_limits_are_configurable():
    """Smaller limits refuse images that the defaults accept."""
    raw = encode(gradient_rgb(100, 100))
    assert load_image(raw).shape == (100, 100, 3)
    with pytest.raises(ImageError, match="megapixel"):
        load_image(raw, max_pixels=5000)
    with pytest.raises(ImageError, match="larger than"):
        load_image(raw, max_bytes=100)


def test_oversized_file_object_is_not_read_whole():
    """A file object larger than the byte limit is refused after reading just past the limit."""

    class Endless(io.RawIOBase):
        def __init__(self):
            self.served = 0

        def readable(self):
            return True

        def read(self, size=-1):
            size = 1 << 20 if size is None or size < 0 else size
            self.served += size
            return b"\0" * size

    stream = Endless()
    with pytest.raises(ImageError, match="larger than"):
        load_image(stream, max_bytes=1000)
    assert stream.served <= 1001


def test_missing_path_and_wrong_types(tmp_path):
    """A missing path, a folder, a text-mode file and an unknown type each give ImageError."""
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path)
    (tmp_path / "t.txt").write_text("hello")
    with open(tmp_path / "t.txt") as text_stream, pytest.raises(ImageError, match="binary"):
        load_image(text_stream)
    with pytest.raises(ImageError):
        load_image(12345)


def test_unknown_mode_is_a_programming_error():
    """Asking for a mode other than RGB or L raises ValueError naming the choices."""
    with pytest.raises(ValueError, match="RGB"):
        load_image(encode(gradient_rgb()), mode="CMYK")


ODD_SIZES = [(8000, 2), (2, 8000), (1, 1), (3, 3), (2, 1), (100000, 1), (1, 100000)]


@pytest.mark.parametrize(("width", "height"), ODD_SIZES)
def test_for_display_fits_streamlit_and_keeps_a_visible_short_side(width, height):
    """Any size the loader accepts becomes a picture at most 1460 px a side, at most 8:1, never empty."""
    image = np.full((height, width, 3), 7, np.uint8)
    shown = for_display(image)
    assert min(shown.shape[:2]) >= 1 and max(shown.shape[:2]) <= DISPLAY_MAX_SIDE
    assert max(shown.shape[:2]) <= 8 * min(shown.shape[:2])
    assert max(shown.shape[:2]) == min(max(width, height), DISPLAY_MAX_SIDE)
    assert shown.dtype == np.uint8 and (shown == 7).any()
    # What Streamlit does with a picture wider than 1460 px: it must now never have to.
    assert shown.shape[1] <= 1460


def test_fit_for_display_scales_down_only_and_reports_the_factor():
    """A 2920x100 picture halves to 1460x50 (factor 0.5); one that fits comes back untouched."""
    small = np.zeros((30, 40, 3), np.uint8)
    same, factor = fit_for_display(small)
    assert same is small and factor == 1.0
    half, factor = fit_for_display(np.zeros((100, 2920, 3), np.uint8))
    assert half.shape == (50, 1460, 3) and factor == 0.5
    strip, _ = fit_for_display(np.zeros((2, 8000), np.uint8))
    assert strip.shape == (1, 1460)  # 2 x 1460 / 8000 = 0.37 rows rounds to 0: kept at one


def test_pad_to_aspect_centres_the_picture_on_grey_bands():
    """A 1x16 row gets grey rows above and below (to 2x16 at 8:1), its pixels unchanged in the middle."""
    row = np.full((1, 16, 3), 9, np.uint8)
    padded = pad_to_aspect(row)
    assert padded.shape == (2, 16, 3)
    tall = pad_to_aspect(np.full((40, 1), 9, np.uint8))
    assert tall.shape == (40, 5) and (tall[:, 2] == 9).all() and (tall[:, [0, 1, 3, 4]] == 128).all()
    square = np.zeros((5, 5), np.uint8)
    assert pad_to_aspect(square) is square
