"""open_dataset on each folder layout, built from tiny real images in tmp_path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xai_panel.data import (
    Dataset,
    DatasetError,
    ImageRecord,
    demo_dataset,
    imagenet_classes,
    open_dataset,
    wnid_to_index,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _image(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    format = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None
    Image.new("RGB", (8, 8), colour).save(path, format)
    return path


def _ids(dataset: Dataset) -> list[str]:
    return [record.id for record in dataset]


def test_wnid_named_files(tmp_path):
    _image(tmp_path / "n01440764_123.JPEG")
    _image(tmp_path / "n01443537_goldfish.JPEG")
    _image(tmp_path / "n15075141.jpeg")  # bare wnid, no suffix
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "imagenet"
    assert [(r.id, r.label, r.label_name) for r in dataset] == [
        ("n01440764_123.JPEG", 0, "tench"),
        ("n01443537_goldfish.JPEG", 1, "goldfish"),
        ("n15075141.jpeg", 999, "toilet tissue"),
    ]


def test_wnid_folders(tmp_path):
    _image(tmp_path / "n02102040" / "a.JPEG")
    _image(tmp_path / "n02102040" / "b.JPEG")
    _image(tmp_path / "n01440764" / "c.JPEG")
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "imagenet"
    assert _ids(dataset) == ["n01440764/c.JPEG", "n02102040/a.JPEG", "n02102040/b.JPEG"]
    assert [r.label for r in dataset] == [0, 217, 217]
    assert dataset.labels() == {"tench": 1, "English springer": 2}


def test_class_folders_named_after_imagenet_classes(tmp_path):
    _image(tmp_path / "tench" / "1.png")
    _image(tmp_path / "Golden_Retriever" / "1.png")  # case and underscores do not matter
    _image(tmp_path / "great white shark" / "1.png")
    _image(tmp_path / "Cardigan" / "1.png")  # exact case decides: the corgi, not the sweater
    _image(tmp_path / "crane" / "1.png")  # a bird and a machine: ambiguous, no index
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "class-folders"
    labels = {r.label_name: r.label for r in dataset}
    classes = imagenet_classes()
    assert labels == {
        "Cardigan": classes.index("Cardigan"),
        "Golden_Retriever": classes.index("golden retriever"),
        "crane": None,
        "great white shark": 2,
        "tench": 0,
    }


def test_class_folders_with_arbitrary_names(tmp_path):
    _image(tmp_path / "my cats" / "tom.jpg")
    _image(tmp_path / "my cats" / "indoor" / "felix.jpg")  # nested: still "my cats"
    _image(tmp_path / "dogs" / "rex.png")
    dataset = open_dataset(tmp_path)
    assert [(r.id, r.label, r.label_name) for r in dataset] == [
        ("dogs/rex.png", None, "dogs"),
        ("my cats/indoor/felix.jpg", None, "my cats"),
        ("my cats/tom.jpg", None, "my cats"),
    ]
    assert dataset.labels() == {"dogs": 1, "my cats": 2}
    assert _ids(dataset.by_label("my cats")) == ["my cats/indoor/felix.jpg", "my cats/tom.jpg"]


def test_flat_folder_skips_hidden_and_non_images(tmp_path):
    _image(tmp_path / "b.JPG")
    _image(tmp_path / "a.png")
    _image(tmp_path / "C.PnG")
    _image(tmp_path / ".hidden.png")
    _image(tmp_path / ".cache" / "thumb.png")
    (tmp_path / "readme.txt").write_text("not an image")
    dataset = open_dataset(tmp_path, name="holiday")
    assert dataset.layout == "flat" and dataset.name == "holiday"
    assert _ids(dataset) == ["C.PnG", "a.png", "b.JPG"]  # code-point order: the same everywhere
    assert all(r.label is None and r.label_name is None for r in dataset)
    assert dataset.labels() == {}


def test_imagenette_layout_with_split_folders(tmp_path):
    root = tmp_path / "imagenette2-160"
    _image(root / "train" / "n01440764" / "n01440764_1.JPEG")
    _image(root / "train" / "n03000684" / "n03000684_7.JPEG")
    _image(root / "val" / "n01440764" / "ILSVRC2012_val_00009111.JPEG")
    (root / "noisy_imagenette.csv").write_text("path,noisy_labels_0\n")
    dataset = open_dataset(root)
    assert dataset.name == "imagenette2-160" and dataset.layout == "imagenet"
    assert len(dataset) == 3
    assert dataset.labels() == {"tench": 2, "chain saw": 1}
    assert dataset.get("val/n01440764/ILSVRC2012_val_00009111.JPEG").label == 0


def test_split_folders_above_class_folders(tmp_path):
    _image(tmp_path / "train" / "cats" / "a.png")
    _image(tmp_path / "val" / "cats" / "b.png")
    _image(tmp_path / "test" / "c.png")  # directly in a split folder: unlabelled
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "mixed"
    assert {r.id: r.label_name for r in dataset} == {
        "test/c.png": None,
        "train/cats/a.png": "cats",
        "val/cats/b.png": "cats",
    }


def test_record_and_dataset_api(tmp_path):
    _image(tmp_path / "n01440764" / "a.png", colour=(10, 20, 30))
    _image(tmp_path / "n01443537" / "b.png")
    dataset = open_dataset(tmp_path)
    first = dataset[0]
    assert isinstance(first, ImageRecord) and first.path == tmp_path.resolve() / "n01440764" / "a.png"
    np.testing.assert_array_equal(first.load()[0, 0], [10, 20, 30])
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.label = 5
    assert list(dataset) == [dataset[0], dataset[1]] and dataset[-1].label == 1
    assert isinstance(dataset[:1], Dataset) and len(dataset[:1]) == 1
    assert dataset.get("n01443537/b.png") is dataset[1]
    assert dataset.get("missing.png") is None
    assert "n01443537/b.png" in dataset and first in dataset
    assert _ids(dataset.by_label(1)) == ["n01443537/b.png"]
    assert _ids(dataset.by_label("tench")) == ["n01440764/a.png"]
    assert dataset.root == tmp_path.resolve()
    assert "records=2" in repr(dataset)


# --- errors ----------------------------------------------------------------------------


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to see")
    with pytest.raises(DatasetError, match=rf"No images found in {tmp_path}.*\.jpeg, \.jpg, \.png"):
        open_dataset(tmp_path)


def test_nonexistent_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"Dataset folder .*missing does not exist"):
        open_dataset(tmp_path / "missing")


def test_file_instead_of_folder(tmp_path):
    image = _image(tmp_path / "a.png")
    with pytest.raises(DatasetError, match=r"a\.png is a file; a dataset is a folder of images"):
        open_dataset(image)


# --- path traversal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "evil_id",
    [
        "../secret.png",
        "a/../../secret.png",
        "/etc/passwd",
        "C:\\Windows\\win.ini",
        "a\\..\\b.png",
        "./a.png",
        "a//b.png",
        "",
    ],
)
def test_resolve_refuses_unsafe_ids(tmp_path, evil_id):
    _image(tmp_path / "root" / "a.png")
    dataset = open_dataset(tmp_path / "root")
    with pytest.raises(ValueError, match="id"):
        dataset.resolve(evil_id)


def test_resolve_unknown_id_is_a_key_error(tmp_path):
    _image(tmp_path / "a.png")
    dataset = open_dataset(tmp_path)
    assert dataset.resolve("a.png") == tmp_path.resolve() / "a.png"
    with pytest.raises(KeyError, match=r"No image with id 'b\.png' in dataset"):
        dataset.resolve("b.png")


def test_symlinked_files_are_images_of_the_folder_wherever_they_lead(tmp_path):
    # An ImageNet subset as users make it: a folder of links into a full ImageNet tree.
    tree = tmp_path / "imagenet" / "train"
    tench = _image(tree / "n01440764" / "n01440764_10026.JPEG", (10, 200, 10))
    goldfish = _image(tree / "n01443537" / "n01443537_1.JPEG", (200, 150, 10))
    root = tmp_path / "subset"
    (root / "n01440764").mkdir(parents=True)
    (root / "n01440764" / "n01440764_10026.JPEG").symlink_to(tench)
    (root / "n01443537_1.JPEG").symlink_to(goldfish)  # a flat link, labelled by its own name
    (root / "renamed.jpg").symlink_to(goldfish)  # two links to one file: two images
    hop = tmp_path / "hop.JPEG"
    hop.symlink_to(tench)
    (root / "chain.JPEG").symlink_to(hop)  # a link to a link: its final target
    _image(root / "plain.png")
    dataset = open_dataset(root)
    assert _ids(dataset) == ["chain.JPEG", "n01440764/n01440764_10026.JPEG", "n01443537_1.JPEG", "plain.png",
                             "renamed.jpg"]
    assert dataset.skipped == {}
    records = {r.id: r for r in dataset}
    # Ids are the links' folder-relative paths, labels come from them; ``path`` is the real file.
    assert records["n01440764/n01440764_10026.JPEG"].label == wnid_to_index("n01440764")
    assert records["n01443537_1.JPEG"].label == wnid_to_index("n01443537")
    assert records["renamed.jpg"].label is None and records["renamed.jpg"].name == "renamed.jpg"
    assert records["chain.JPEG"].path == tench.resolve() and records["renamed.jpg"].path == goldfish.resolve()
    assert dataset.resolve("n01443537_1.JPEG") == goldfish.resolve()
    assert dataset.resolve("plain.png") == (root / "plain.png").resolve()
    assert np.array_equal(records["renamed.jpg"].load(), records["n01443537_1.JPEG"].load())
    assert not np.array_equal(records["renamed.jpg"].load(), records["chain.JPEG"].load())


def test_what_the_scan_skips_is_counted_and_never_resolves(tmp_path):
    outside = _image(tmp_path / "outside" / "secret.png")
    root = tmp_path / "root"
    _image(root / "a.png")
    (root / "linked_folder").symlink_to(outside.parent, target_is_directory=True)
    (root / "gone.png").symlink_to(tmp_path / "nothing.png")
    (root / "folder.png").symlink_to(outside.parent, target_is_directory=True)  # a folder, whatever its name
    (root / "notes.txt").write_text("not an image")
    (root / "notes.png").symlink_to(root / "notes.txt")  # a link named like an image, to a text file: kept
    (root / ".hidden.png").write_bytes((root / "a.png").read_bytes())
    dataset = open_dataset(root)
    assert _ids(dataset) == ["a.png", "notes.png"]  # notes.png is an image by name: unreadable when loaded
    # What was left out is counted, by reason, and said in words (the page and the log say it).
    assert dataset.skipped == {"linked_folders": 2, "dangling": 1, "not_images": 1, "hidden": 1}
    assert dataset.skipped_text() == ("1 broken symlinks and other entries that are not files, 2 symlinked folders "
                                      "(not entered), 1 hidden files or folders, 1 files that are not images by "
                                      "their extension")
    for id_ in ("linked_folder/secret.png", "gone.png", "folder.png", ".hidden.png", "notes.txt"):
        with pytest.raises(KeyError):
            dataset.resolve(id_)


def test_a_link_or_folder_changed_after_the_scan_is_refused(tmp_path):
    outside = _image(tmp_path / "outside" / "secret.png")
    elsewhere = _image(tmp_path / "tree" / "b.png")
    root = tmp_path / "root"
    _image(root / "a.png")
    _image(root / "sub" / "c.png")
    (root / "alias.png").symlink_to(elsewhere)
    dataset = open_dataset(root)
    assert _ids(dataset) == ["a.png", "alias.png", "sub/c.png"]
    refused = r"no longer leads to the file the scan of .* found \(a link or folder changed since\); refusing it"
    # A link re-pointed (outside or not) since the scan.
    (root / "alias.png").unlink()
    (root / "alias.png").symlink_to(outside)
    with pytest.raises(ValueError, match=refused):
        dataset.resolve("alias.png")
    # A file swapped for a link.
    (root / "a.png").unlink()
    (root / "a.png").symlink_to(outside)
    with pytest.raises(ValueError, match=refused):
        dataset.resolve("a.png")
    # A folder swapped for a link to a folder holding a file of the same name.
    (root / "sub" / "c.png").rename(tmp_path / "c.png")
    (root / "sub").rmdir()
    _image(tmp_path / "evil" / "c.png")
    (root / "sub").symlink_to(tmp_path / "evil", target_is_directory=True)
    with pytest.raises(ValueError, match=refused):
        dataset.resolve("sub/c.png")
    # A link added since the scan is not an image of the dataset.
    (root / "late.png").symlink_to(outside)
    with pytest.raises(KeyError, match="No image with id 'late.png'"):
        dataset.resolve("late.png")


def test_a_folder_of_only_skipped_files_says_what_was_skipped(tmp_path):
    root = tmp_path / "links"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.png").symlink_to(tmp_path / f"missing-{i}.png")
    (root / "readme.md").write_text("links to nowhere")
    with pytest.raises(DatasetError, match=r"No images found in .*Skipped: 3 broken symlinks and other entries that "
                                           r"are not files, 1 files that are not images by their extension\."):
        open_dataset(root)


# --- demo and shared data ------------------------------------------------------------------

# The labels documented in xai_panel/data/demo.py, by file name.
DEMO_LABELS = {
    "chelsea.png": "tabby",
    "coffee.png": "espresso",
    "rocket.jpg": "missile",
    "camera.png": "tripod",
    "astronaut.png": None,
    "motorcycle_left.png": None,
    "china.jpg": "palace",
    "flower.jpg": None,
    "grace_hopper.jpg": "military uniform",
}


def test_demo_dataset_photos_load_with_documented_labels():
    dataset = open_dataset()  # None means the demo gallery
    assert dataset is demo_dataset() and dataset.name == "demo"
    assert len(dataset) >= 6
    classes = imagenet_classes()
    for record in dataset:
        assert record.path.is_file() and dataset.resolve(record.id) == record.path
        assert record.label_name == DEMO_LABELS[record.path.name]
        assert record.label == (classes.index(record.label_name) if record.label_name else None)
        pixels = record.load()
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
        assert min(pixels.shape[:2]) >= 256  # real photos, not icons
    assert sum(r.label is not None for r in dataset) >= 6


@pytest.mark.skipif(
    not (SHARED_DATA / "imagenet-sample").is_dir(),
    reason=f"shared ImageNet sample not present at {SHARED_DATA} (only on developer machines and CI)",
)
def test_shared_imagenet_sample_is_labelled_by_wnid():
    dataset = open_dataset(SHARED_DATA / "imagenet-sample")
    assert len(dataset) == 802 and dataset.layout == "imagenet"
    classes = imagenet_classes()
    for record in dataset:
        wnid, class_name = record.path.stem.split("_", 1)
        assert record.label == wnid_to_index(wnid)
        assert record.label_name == classes[record.label] == class_name.replace("_", " ")
    assert dataset.get("n01440764_tench.JPEG").label == 0
    assert len(dataset.labels()) == 802


def test_ids_are_posix_paths_relative_to_the_root(tmp_path):
    _image(tmp_path / "x" / "y" / "z.png")
    assert open_dataset(tmp_path)[0].id == "x/y/z.png"
