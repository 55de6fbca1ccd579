"""The bundled ImageNet class list."""

from __future__ import annotations

import pytest

from xai_panel.data import imagenet_classes, imagenet_wnids, wnid_to_index
from xai_panel.data.synsets import class_name_to_index


def test_class_list_is_in_index_order_with_readable_names():
    classes, wnids = imagenet_classes(), imagenet_wnids()
    assert len(classes) == len(wnids) == len(set(wnids)) == 1000
    assert (wnids[0], classes[0]) == ("n01440764", "tench")
    assert (wnids[999], classes[999]) == ("n15075141", "toilet tissue")
    assert classes[2] == "great white shark"  # underscores become spaces


def test_returned_lists_are_copies():
    imagenet_classes().clear()
    assert len(imagenet_classes()) == 1000


def test_wnid_to_index():
    assert wnid_to_index("n01440764") == 0
    assert wnid_to_index("n15075141") == 999
    with pytest.raises(KeyError, match="'n00000000' is not one of the 1000 ImageNet-1k wnids"):
        wnid_to_index("n00000000")


def test_class_name_to_index_handles_case_and_ambiguity():
    assert class_name_to_index("Great_White_Shark") == 2
    assert class_name_to_index("Cardigan") == imagenet_classes().index("Cardigan")
    assert class_name_to_index("cardigan") == imagenet_classes().index("cardigan")
    assert class_name_to_index("CARDIGAN") is None
    assert class_name_to_index("crane") is None
    assert class_name_to_index("my cats") is None
