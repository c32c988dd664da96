"""Every Pillow mode a user plausibly has decodes faithfully to uint8, or is refused naming the file."""
import numpy as np
import pytest
import torch
from PIL import Image

from lowdata.data.imagefolder import decode_all
from lowdata.errors import UsageError

GRADIENT = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # 4 x 16, values 0..240


def save(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


def decoded(tmp_path, name, image):
    return decode_all([save(tmp_path, name, image)], None)[0]


@pytest.mark.parametrize("mode, suffix", [("L", "png"), ("LA", "png"), ("1", "png"), ("I;16", "png"),
                                          ("I", "tif"), ("F", "tif")])
def test_grey_modes_keep_their_grey_levels(tmp_path, mode, suffix):
    if mode == "1":
        image = Image.fromarray(GRADIENT >= 128).convert("1")
        expected = np.where(GRADIENT >= 128, 255, 0)
    elif mode == "LA":
        image = Image.merge("LA", [Image.fromarray(GRADIENT), Image.fromarray(np.full_like(GRADIENT, 7))])
        expected = GRADIENT  # alpha dropped
    elif mode == "I;16":  # full 16-bit range: 0..65535 maps to 0..255
        image = Image.fromarray(GRADIENT.astype(np.uint16) * 257)
        expected = GRADIENT
    elif mode == "I":
        image = Image.fromarray(GRADIENT.astype(np.int32) * 257)
        expected = GRADIENT
    elif mode == "F":  # floats in [0, 1]
        image = Image.fromarray(GRADIENT.astype(np.float32) / 255)
        expected = GRADIENT
    else:
        image = Image.fromarray(GRADIENT)
        expected = GRADIENT
    assert image.mode == mode
    out = decoded(tmp_path, f"x.{suffix}", image)
    assert out.dtype == torch.uint8 and out.shape == (1, 4, 16)
    assert torch.equal(out[0], torch.from_numpy(np.asarray(expected, dtype=np.uint8)))


@pytest.mark.parametrize("mode, suffix", [("RGB", "png"), ("RGBA", "png"), ("P", "png"), ("CMYK", "tif")])
def test_colour_modes_become_rgb(tmp_path, mode, suffix):
    rgb = np.stack([GRADIENT, 255 - GRADIENT, np.full_like(GRADIENT, 60)], axis=-1)
    image = Image.fromarray(rgb)
    if mode == "RGBA":
        image.putalpha(100)
    elif mode == "P":
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    elif mode == "CMYK":
        image = image.convert("CMYK")
    assert image.mode == mode
    out = decoded(tmp_path, f"x.{suffix}", image)
    assert out.shape == (3, 4, 16)
    tolerance = 2 if mode in ("P", "CMYK") else 0  # a palette quantises, CMYK round-trips through ink
    assert (out.permute(1, 2, 0).int() - torch.from_numpy(rgb).int()).abs().max() <= tolerance


def test_twelve_bit_data_in_sixteen_bit_files_keeps_its_levels(tmp_path):
    # microscopy-style: values 0..4095 in 16-bit PNGs. Clamping made them white; the 16-bit range would leave
    # 16 grey levels. Scaled from 12 bits, one map for the whole dataset, so relative brightness survives.
    bright = (GRADIENT.astype(np.uint16) * 16).clip(0, 4095)
    paths = [save(tmp_path, "bright.png", Image.fromarray(bright)),
             save(tmp_path, "dim.png", Image.fromarray(bright // 2))]
    images = decode_all(paths, None)
    assert len(torch.unique(images[0])) == 16 and images[0].max() == round(3840 * 255 / 4095)
    assert torch.allclose(images[1].float(), images[0].float() / 2, atol=1)  # the dim image stays half as bright


def test_float_images_outside_zero_one_are_scaled_by_the_dataset_range(tmp_path):
    low = Image.fromarray(np.full((4, 16), -1.0, dtype=np.float32))
    high = Image.fromarray(np.full((4, 16), 3.0, dtype=np.float32))
    images = decode_all([save(tmp_path, "a.tif", low), save(tmp_path, "b.tif", high)], None)
    assert images[0].max() == 0 and images[1].min() == 255


@pytest.mark.parametrize("array, message", [
    (np.full((4, 16), np.nan, dtype=np.float32), "NaN or infinite"),
    (np.full((4, 16), -5, dtype=np.int32), "holds values from -5 to -5"),
])
def test_images_that_cannot_be_represented_are_refused_by_name(tmp_path, array, message):
    path = save(tmp_path, "bad.tif", Image.fromarray(array))
    with pytest.raises(UsageError, match=f"image {path}.*{message}"):
        decode_all([path], None)


def test_sixteen_bit_images_resize_before_scaling(tmp_path):
    image = Image.fromarray((GRADIENT.astype(np.uint16) * 257).repeat(4, axis=0))  # 16 x 16
    out = decode_all([save(tmp_path, "x.png", image)], 8)[0]
    assert out.shape == (1, 8, 8) and out.max() > 200 and out.min() < 20


def test_an_image_over_pillows_bomb_limit_is_refused_by_name(tmp_path, monkeypatch):
    path = save(tmp_path, "huge.png", Image.fromarray(GRADIENT))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 64 pixels > 2 × 10: Pillow raises, as for > 179 MP
    with pytest.raises(UsageError, match=f"image {path} is larger than Pillow's limit of 20 pixels"):
        decode_all([path], None)
