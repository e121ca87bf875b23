"""Your own picture prepared like Fashion-MNIST: synthetic photos with known answers, real test images, bad files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from core.images import ImageError
from core.shallow.picture import SIDE, prepare_picture


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def rectangle_photo(width: int, height: int, rect: tuple[int, int, int, int], colour, background) -> bytes:
    """A width x height RGB photo of one filled rectangle (left, top, right, bottom; inclusive) on a background."""
    photo = np.empty((height, width, 3), np.uint8)
    photo[:] = background
    left, top, right, bottom = rect
    photo[top : bottom + 1, left : right + 1] = colour
    return png(photo)


def shirt_photo(colour=(25, 35, 90), background=(255, 255, 255), size=(300, 360)) -> bytes:
    """A T-shirt outline (body and two sleeves) in `colour` on `background`, off centre."""
    image = Image.new("RGB", size, background)
    ImageDraw.Draw(image).polygon(
        [
            (60, 60),
            (110, 40),
            (190, 40),
            (240, 60),
            (280, 130),
            (235, 150),
            (215, 120),
            (215, 320),
            (85, 320),
            (85, 120),
            (65, 150),
            (20, 130),
        ],  # fmt: skip
        fill=colour,
    )
    return png(np.asarray(image))


def test_a_white_rectangle_on_black_stays_light_and_centred():
    """A 200x100 white block at the top left of a black photo becomes a 28x14 white band in the middle rows."""
    prepared = prepare_picture(rectangle_photo(640, 480, (20, 30, 219, 129), 255, 0))
    image = prepared.image
    assert image.dtype == np.uint8 and image.shape == (SIDE, SIDE)
    assert not prepared.negated and prepared.background == (0, 0, 0)
    expected = np.zeros((SIDE, SIDE), np.uint8)
    expected[7:21, :] = 255  # 200x100 trimmed, scaled to 28x14, centred: 7 black rows above and below.
    np.testing.assert_array_equal(image, expected)
    rows, cols = ndimage.center_of_mass(image)
    assert (rows, cols) == pytest.approx((13.5, 13.5))


def test_a_dark_shirt_on_white_is_negated_into_a_light_shirt_on_black():
    """The article's usual case: the background turns black, the shirt light, and it fills the 28 rows."""
    prepared = prepare_picture(shirt_photo())
    image = prepared.image
    assert prepared.negated and prepared.background == (255, 255, 255)
    assert image.dtype == np.uint8 and image.shape == (SIDE, SIDE)
    corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() == 0  # The white background, negated.
    # The shirt's luma is about 38 (ITU-R 601 of (25, 35, 90)): negated, about 217.
    assert np.median(image[image > 100]) == pytest.approx(255 - 38, abs=6)
    lit_rows = np.flatnonzero(image.max(axis=1) > 100)
    assert lit_rows[0] == 0 and lit_rows[-1] == SIDE - 1  # The taller side spans the canvas...
    rows, cols = ndimage.center_of_mass(image > 100)
    assert abs(cols - 13.5) < 1.0  # ...and the shirt (symmetric) sits in the middle.


def test_a_light_garment_on_a_dark_background_is_not_negated():
    """A pale shirt on a dark-grey floor is already light on dark: negating it would get it wrong (luma 41 stays)."""
    prepared = prepare_picture(shirt_photo(colour=(230, 225, 210), background=(40, 40, 45)))
    assert not prepared.negated
    image = prepared.image
    assert image[0, 0] == 41 and np.median(image[image > 100]) > 200


@pytest.mark.parametrize(("width", "height", "lit"), [(90, 300, (28, 8)), (300, 90, (8, 28)), (50, 700, (28, 2))])
def test_tall_and_wide_photos_keep_their_aspect(width, height, lit):
    """A 90x300 garment is 28 tall and 8 wide (90 * 28 / 300 = 8.4), centred; wide ones likewise."""
    prepared = prepare_picture(rectangle_photo(width + 40, height + 40, (20, 20, width + 19, height + 19), 0, 255))
    image = prepared.image
    assert prepared.negated and image.shape == (SIDE, SIDE)
    rows = np.flatnonzero(image.max(axis=1) > 128)
    cols = np.flatnonzero(image.max(axis=0) > 128)
    assert (rows.size, cols.size) == lit
    assert rows[0] == (SIDE - lit[0]) // 2 and cols[0] == (SIDE - lit[1]) // 2


def test_every_step_is_kept_for_the_page_in_the_papers_order():
    """Photo, trim, resize, sharpen, centre, negate, grayscale: each step's picture, ending in the result."""
    prepared = prepare_picture(shirt_photo())
    titles = [step.title for step in prepared.steps]
    assert titles == [
        "Your photo",
        "Edges of the corners' colour trimmed",
        "Longest edge 28 pixels",
        "Sharpened",
        "Centred on 28 x 28",
        "Negated",
        "Grayscale",
    ]
    shapes = [step.image.shape for step in prepared.steps]
    assert shapes[0] == (360, 300, 3)
    assert shapes[1] == (281, 261, 3)  # The polygon's bounding box: rows 40-320, columns 20-280.
    assert shapes[2] == (28, 26, 3) and shapes[3] == (28, 26, 3)
    assert shapes[4:] == [(28, 28, 3), (28, 28, 3), (28, 28)]
    assert all(step.image.dtype == np.uint8 for step in prepared.steps)
    np.testing.assert_array_equal(prepared.steps[-1].image, prepared.image)
    np.testing.assert_array_equal(prepared.steps[5].image, 255 - prepared.steps[4].image)


def test_sharpening_is_an_unsharp_mask_with_a_gaussian_of_sigma_one():
    """The sharpened step equals 2 x picture - Gaussian(sigma 1) of it, as scipy computes it, within rounding."""
    prepared = prepare_picture(shirt_photo())
    resized = prepared.steps[2].image.astype(np.float64)
    blurred = np.stack([ndimage.gaussian_filter(resized[..., c], 1.0, mode="nearest") for c in range(3)], axis=2)
    expected = np.clip(2 * resized - blurred, 0, 255)
    difference = np.abs(prepared.steps[3].image.astype(np.float64) - expected)
    # Pillow's blur is an extended box filter close to the Gaussian: most pixels agree within a few levels.
    assert np.median(difference) <= 2 and np.percentile(difference, 95) <= 25


def test_a_huge_photo_is_prepared_from_a_smaller_working_copy():
    """A 4000x3000 photo is scaled to 1024 wide before the steps, with the same answer as a small one."""
    # 1024 / 4000 = 0.256: the block's edges (multiples of 125 pixels) fall on whole pixels of the copy.
    big = prepare_picture(rectangle_photo(4000, 3000, (500, 625, 2499, 1624), 255, 0))
    assert big.steps[0].image.shape == (768, 1024, 3)
    assert big.image[7:21].min() == 255 and big.image[:7].max() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"not really a PNG", "is not an image file we can read"),
        (png(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8))[:5000], "truncated"),
    ],
)
def test_bad_files_get_the_shared_loaders_message(data, message):
    """Empty, non-image and truncated files raise the loader's ImageError, not a traceback."""
    with pytest.raises(ImageError, match=message):
        prepare_picture(data)


def test_a_flat_photo_of_one_colour_gives_a_blank_picture():
    """A photo that is all background has nothing to trim: a white one becomes black, a black one stays black."""
    assert prepare_picture(png(np.full((50, 80, 3), 255, np.uint8))).image.max() == 0
    assert prepare_picture(png(np.zeros((50, 80, 3), np.uint8))).image.max() == 0


def test_one_pixel_and_a_long_strip_still_give_28x28():
    """A 1x1 photo and a 3000x2 strip prepare without error, at 28x28."""
    for pixels in (np.full((1, 1, 3), 200, np.uint8), np.random.default_rng(0).integers(0, 256, (2, 3000, 3))):
        assert prepare_picture(png(pixels.astype(np.uint8))).image.shape == (SIDE, SIDE)


@pytest.fixture(scope="module")
def trained_network(tmp_path_factory):
    """A small article network trained for real (3,000 images, 3 epochs), read back with `Network`."""
    from core.shallow.config import TrainingConfig
    from core.shallow.jobs import JobQueue
    from core.shallow.network import Network
    from core.shallow.runs import RunStore

    config = TrainingConfig(
        hidden_units=(8,), dropout=0.5, learning_rate=3e-3, train_limit=3000, batch_size=50, epochs=3
    )
    queue = JobQueue(store=RunStore(tmp_path_factory.mktemp("picture-net") / "runs.sqlite"))
    progress = queue.submit(config).wait(300)
    assert progress.status == "finished", progress.error
    return Network.from_file(config, queue.store.get_run(progress.run_id).model_path)


def as_photo(image: np.ndarray, negate: bool, scale: int) -> bytes:
    """A Fashion-MNIST image as a photo: optionally dark on white again, and `scale` times larger, in RGB."""
    pixels = 255 - image if negate else image
    pixels = np.kron(pixels, np.ones((scale, scale), np.uint8))
    return png(np.stack([pixels] * 3, axis=2))


@pytest.mark.parametrize(("negate", "scale"), [(False, 1), (True, 1), (True, 10)])
def test_real_test_images_keep_their_class_after_preparing(trained_network, negate, scale):
    """300 test images, as they are or as 280x280 dark-on-white photos: prepared, the network mostly gives
    the class it gives the originals (88% measured with this network), and about its accuracy."""
    from core.data import load_fashion_mnist

    _, (x_test, y_test) = load_fashion_mnist()
    images, labels = x_test[:300], y_test[:300]
    prepared = np.stack([prepare_picture(as_photo(image, negate, scale)).image for image in images])
    assert prepared.dtype == np.uint8 and prepared.shape == (300, SIDE, SIDE)
    before = trained_network.predict(images).argmax(axis=1)
    after = trained_network.predict(prepared).argmax(axis=1)
    assert np.mean(after == before) >= 0.8
    assert np.mean(after == labels) >= np.mean(before == labels) - 0.1
    # The garment stays where it was: on average the prepared pixels differ by a small fraction of 255.
    assert np.abs(prepared.astype(np.int16) - images).mean() < 30
