"""Images in, labelled records out: the data layer every other part builds on.

Loading (:func:`load_image`), labelled folders (:func:`open_dataset`), the
offline demo gallery (:func:`demo_dataset`), the ImageNet class list and the
optional Imagenette download. Pure Python and NumPy; no Panel, no torch.
"""

from .datasets import Dataset, DatasetError, ImageRecord, open_dataset
from .demo import demo_dataset
from .fetch import FetchError, fetch_imagenette
from .images import ImageError, image_hash, load_image
from .synsets import imagenet_classes, imagenet_wnids, wnid_to_index

__all__ = [
    "Dataset",
    "DatasetError",
    "FetchError",
    "ImageError",
    "ImageRecord",
    "demo_dataset",
    "fetch_imagenette",
    "image_hash",
    "imagenet_classes",
    "imagenet_wnids",
    "load_image",
    "open_dataset",
    "wnid_to_index",
]
