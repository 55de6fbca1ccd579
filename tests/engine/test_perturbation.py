"""The perturbation engine and segmentation, on the real model and real photos."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xai_panel.engine.perturbation import Cancelled, PerturbationEngine, fill_image, uniform_coalitions
from xai_panel.engine.segmentation import segment


@pytest.fixture(scope="module")
def view(classifier, chelsea):
    return classifier.prepare(chelsea)


@pytest.mark.parametrize("algorithm", ["quickshift", "slic", "felzenszwalb", "grid"])
def test_segment_ids_are_contiguous_from_zero(view, algorithm):
    seg = segment(view, algorithm)
    ids = np.unique(seg.labels)
    assert ids[0] == 0 and np.array_equal(ids, np.arange(seg.n_segments))
    assert seg.labels.shape == view.shape[:2] and seg.n_segments >= 4


def test_segmentation_settings_are_checked(view):
    assert segment(view, "grid", rows=2, cols=3).n_segments == 6
    assert segment(view, "slic", n_segments=10).params["n_segments"] == 10
    with pytest.raises(ValueError, match="unknown segmentation 'watershed'"):
        segment(view, "watershed")
    with pytest.raises(ValueError, match="not \\['n_segments'\\]"):
        segment(view, "quickshift", n_segments=5)


def test_mean_fill_truncates_like_lime_and_alibi(view):
    seg = segment(view, "grid", rows=2, cols=2)
    filled = fill_image(view, seg.labels, "mean")
    region = seg.labels == 3
    expected = [int(np.mean(view[region][:, c])) for c in range(3)]
    assert filled[region][0].tolist() == expected
    assert np.all(filled[region] == filled[region][0])


def _independent_blur(image, sigma):
    """scipy's Gaussian with OpenCV's extent (3 sigma) and border (reflect: fedcba|abcdef)."""
    from scipy import ndimage

    channels = [ndimage.gaussian_filter(image[..., c].astype(np.float64), sigma, mode="reflect", truncate=3.0)
                for c in range(3)]
    return np.round(np.stack(channels, axis=-1))


def test_blur_fill_hides_superpixels_behind_a_gaussian_blur(view, classifier):
    seg = segment(view, "grid", rows=3, cols=3)
    expected = _independent_blur(view, 10.0)  # fill_image's default blur_sigma
    blurred = fill_image(view, seg.labels, "blur")
    assert blurred.shape == view.shape and blurred.dtype == np.uint8
    assert np.abs(blurred - expected).max() <= 1  # OpenCV rounds its fixed-point sums
    assert np.abs(view - expected).mean() > 5  # a blur, not the photo itself
    engine = PerturbationEngine(view, seg, classifier, "blur")
    coalitions = np.zeros((2, 9), bool)
    coalitions[0, [0, 4]] = True
    images = engine.render(coalitions)
    kept = np.isin(seg.labels, [0, 4])
    assert np.array_equal(images[0][kept], view[kept])
    assert np.abs(images[0][~kept] - expected[~kept]).max() <= 1
    assert np.array_equal(images[1], blurred)  # nothing kept: the blurred photo throughout
    # The model sees exactly these images.
    np.testing.assert_array_equal(engine.render_normalised(coalitions), classifier.preprocessing.normalise(images))


def test_render_keeps_and_hides_the_right_superpixels(view, classifier):
    seg = segment(view, "grid", rows=3, cols=3)
    engine = PerturbationEngine(view, seg, classifier, "constant", fill_color=(1, 2, 3))
    coalitions = np.zeros((2, 9), bool)
    coalitions[0, 4] = True
    coalitions[1] = True
    images = engine.render(coalitions)
    kept = seg.labels == 4
    assert np.array_equal(images[0][kept], view[kept])
    assert np.all(images[0][~kept] == (1, 2, 3))
    assert np.array_equal(images[1], view)


def test_evaluate_memoises_coalitions_and_counts_passes(view, classifier):
    seg = segment(view, "grid", rows=4, cols=4)
    engine = PerturbationEngine(view, seg, classifier)
    pool = uniform_coalitions(40, 16, seed=3)
    with engine.track("first") as first:
        probs = engine.evaluate(pool)
    with engine.track("again") as again:
        repeat = engine.evaluate(np.concatenate([pool[::-1], pool[:5]]))
    assert first["cost"].forward_passes == len({r.tobytes() for r in pool})
    assert again["cost"].forward_passes == 0 and again["cost"].cache_hits == 45
    np.testing.assert_array_equal(repeat[:40], probs[::-1])
    direct = classifier.predict_proba(engine.render(pool[:3]))
    np.testing.assert_allclose(probs[:3], direct, atol=1e-5)


def test_batches_built_ahead_match_the_model_on_each_row(view, classifier):
    # Batch k + 1 is built in another thread while the model runs batch k: every row must
    # still be the probabilities of its own coalition, in order.
    engine = PerturbationEngine(view, segment(view, "grid", rows=4, cols=4), classifier, batch_size=7)
    pool = uniform_coalitions(40, 16, seed=5)
    probs = engine.evaluate(pool)
    direct = classifier.predict_proba(engine.render(pool), batch_size=40)
    np.testing.assert_allclose(probs, direct, atol=1e-5)
    assert engine._tally.passes == len({r.tobytes() for r in pool})


def test_duplicates_within_one_request_run_once(view, classifier):
    engine = PerturbationEngine(view, segment(view, "grid", rows=2, cols=2), classifier)
    same = np.ones((10, 4), bool)
    with engine.track("dup") as box:
        out = engine.evaluate(same)
    assert box["cost"].forward_passes == 1 and box["cost"].cache_hits == 9
    assert np.all(out == out[0])


def test_cancel_stops_between_batches_and_keeps_finished_work(view, classifier):
    cancel = threading.Event()
    calls = []

    def progress(method, done, total):
        calls.append(done)
        if done >= 16:
            cancel.set()

    engine = PerturbationEngine(view, segment(view, "grid", rows=4, cols=4), classifier,
                                batch_size=8, progress=progress, cancel=cancel)
    with pytest.raises(Cancelled):
        engine.evaluate(uniform_coalitions(64, 16, seed=0))
    assert calls == [8, 16]
    assert engine.evaluated == 0  # a cancelled request leaves no half-recorded rows
    cancel.clear()
    engine.evaluate(uniform_coalitions(8, 16, seed=1))
    assert engine.evaluated == 8


def test_uniform_coalitions_are_lime_s_sampler():
    rs = np.random.RandomState(7)
    expected = rs.randint(0, 2, 50 * 9).reshape((50, 9))
    expected[0, :] = 1
    np.testing.assert_array_equal(uniform_coalitions(50, 9, 7), expected.astype(bool))
