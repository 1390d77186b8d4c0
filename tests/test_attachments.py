"""Images and text files from users: normalised when fine, one line each when hostile."""

from __future__ import annotations

import base64
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imagefiles import animated_gif, jpeg_with_gps, png, png_bomb, truncated_jpeg
from PIL import Image

from joulebot.attachments.images import ImageLimits, read_image, read_images
from joulebot.attachments.parts import AttachmentError, TextFile, images_label
from joulebot.attachments.text_files import read_text_file, split_files, with_files

pytestmark = pytest.mark.unit  # nothing here starts a process or opens a socket

LIMITS = ImageLimits(max_images=4, max_bytes=10_000_000, max_pixels=1_048_576)


def decoded(data: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(data)))


def one_line(exc: pytest.ExceptionInfo[AttachmentError]) -> str:
    text = str(exc.value)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def test_an_image_keeps_its_size_when_it_fits_and_is_labelled():
    image = read_image("cat.png", png(768, 512), LIMITS)
    assert (image.width, image.height, image.source_format) == (768, 512, "PNG")
    assert decoded(image.data).size == (768, 512)
    assert images_label([image]) == "🖼 1 image, 768×512"
    assert not image.downscaled and len(image.sha256) == 64


def test_a_large_image_is_downscaled_to_max_image_pixels_keeping_its_aspect():
    image = read_image("big.png", png(4000, 3000), LIMITS)
    assert image.width * image.height <= LIMITS.max_pixels and image.downscaled
    assert abs(image.width / image.height - 4 / 3) < 0.01
    assert decoded(image.data).size == (image.width, image.height)


@pytest.mark.parametrize(("size", "enlarged"), [((8, 8), (28, 28)), ((10, 200), (28, 560)), ((27, 100), (28, 103))])
def test_an_image_smaller_than_one_vision_patch_is_enlarged_keeping_its_aspect(size, enlarged):
    image = read_image("icon.png", png(*size), LIMITS)
    assert (image.width, image.height) == enlarged and decoded(image.data).size == enlarged


def test_a_strip_downscaled_under_a_small_pixel_budget_keeps_one_patch_across():
    image = read_image("strip.png", png(2000, 100), ImageLimits(4, 10_000_000, max_pixels=4096))
    assert image.downscaled and min(image.width, image.height) == 28 and image.width == 560


def test_exif_and_its_gps_position_are_stripped():
    raw = jpeg_with_gps()
    assert Image.open(io.BytesIO(raw)).getexif().get_ifd(0x8825)  # the test photo does carry GPS
    image = read_image("photo.jpg", raw, LIMITS)
    sent = base64.b64decode(image.data)
    assert not decoded(image.data).getexif()
    assert b"PhoneMaker" not in sent and b"Exif" not in sent


def test_the_format_comes_from_the_bytes_not_the_name():
    image = read_image("really-a-png.jpg", png(64, 64), LIMITS)
    assert image.source_format == "PNG"


def test_a_stored_message_splits_back_into_its_words_and_files():
    files = [TextFile(name='odd "name".csv', text="a,b\n\n</file>\n1,2"), TextFile(name="b.md", text="# B")]
    assert split_files(with_files("Compare them.", files)) == ("Compare them.", files)
    typed = 'I wrote <file name="x">\nthis\n</file> myself'
    assert split_files(typed) == (typed, [])


PIECES = st.sampled_from(["\n", "\n\n", '<file name="', '">', "</file>", "a", '"', " "])


@given(st.lists(PIECES, max_size=30).map("".join), st.lists(st.lists(PIECES, max_size=12).map("".join), max_size=3))
def test_splitting_gives_back_exactly_the_message_that_was_stored(words, texts):
    message = with_files(words, [TextFile(name=f"f{i}", text=text) for i, text in enumerate(texts)])
    assert with_files(*split_files(message)) == message
    assert with_files(*split_files(words)) == words


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("bomb.png", png_bomb(), "too many pixels"),
        ("strip.png", png(1, 100_000), "aspect ratio"),
        ("cut.jpg", truncated_jpeg(), "not a complete image"),
        ("moving.gif", animated_gif(), "animated (3 frames)"),
        ("notes.png", b"just some text renamed to look like an image\n" * 20, "not an image"),
        ("huge.jpg", b"\xff\xd8\xff" + b"\x00" * 50_000_000, "images are taken up to 10.0 MB"),
    ],
)
def test_hostile_images_are_refused_with_one_line(name, raw, says):
    with pytest.raises(AttachmentError) as refused:
        read_image(name, raw, LIMITS)
    text = one_line(refused)
    assert text.startswith(f"{name} ") and says in text
    assert text.count(name) == 1, "one reason, not one wrapped in another"


def test_twenty_images_in_one_message_are_refused_before_any_is_decoded():
    with pytest.raises(AttachmentError) as refused:
        read_images([(f"{i}.png", b"not even read") for i in range(20)], LIMITS)
    assert one_line(refused) == "at most 4 images per message (this one has 20)"


def test_a_text_file_becomes_part_of_the_message_named():
    notes = read_text_file("notes.md", "# Plan\nsolar at noon ☀\n".encode(), max_chars=1000)
    message = with_files("Summarise this.", [notes])
    assert message.startswith("Summarise this.\n\n")
    assert '<file name="notes.md">\n# Plan\nsolar at noon ☀\n</file>' in message


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("photo.bin", png(8, 8), "binary file"),
        ("latin1.txt", "Grüße aus Köln".encode("latin-1"), "not UTF-8 text"),
        ("long.txt", b"a" * 1001, "taken up to 1,000"),
        ("document.txt", b"a" * 50_000_000, "50,000,000 bytes"),
    ],
)
def test_files_that_are_not_short_utf8_text_are_refused_with_one_line(name, raw, says):
    with pytest.raises(AttachmentError) as refused:
        read_text_file(name, raw, max_chars=1000)
    text = one_line(refused)
    assert says in text and name in text
