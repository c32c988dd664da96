"""Data that cannot give an honest result is refused, naming what is wrong."""
import pytest

from lowdata import train
from lowdata.data import load_dataset
from lowdata.errors import UsageError


def test_a_one_class_folder_is_refused(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "one", classes=("cat",), split=False)
    with pytest.raises(UsageError, match="one class folder \\(cat\\); a classifier needs at least 2 classes"):
        load_dataset(str(root))


def test_a_folder_too_small_for_a_test_split_is_refused(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "tiny", per_class=2, split=False)  # 20 % of 2 rounds to no test image
    with pytest.raises(UsageError, match="too few images \\(6\\) for a 20% test hold-out"):
        load_dataset(str(root))


def test_empty_class_folders_are_named(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "holes", split=False)
    (root / "empty-a").mkdir()
    (root / "empty-b").mkdir()
    with pytest.raises(UsageError, match="class folders empty-a, empty-b in .* hold no images"):
        load_dataset(str(root))


def test_a_budget_message_names_the_class(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "few", per_class=6)
    for extra in sorted((root / "train" / "cat").iterdir())[3:]:
        extra.unlink()  # cat keeps 3 training images, the others 6
    with pytest.raises(UsageError, match="class 'cat' has only 3 training images but the budget needs 4; lower "
                                         "the budget to at most 9 labels"):
        train(data=str(root), labels=12, epochs=1, out=str(tmp_path / "run"))
    with pytest.raises(UsageError, match="at most 3 labels per class"):
        train(data=str(root), labels_per_class=4, epochs=1, out=str(tmp_path / "run"))


def test_one_empty_class_folder_holds_no_images(tmp_path, image_folder_writer):
    root = image_folder_writer(tmp_path / "images", split=False, per_class=5)
    (root / "empty").mkdir()
    with pytest.raises(UsageError, match="class folder empty in .* holds no images"):
        load_dataset(str(root))
