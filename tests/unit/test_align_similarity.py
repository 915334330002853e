"""Alignment geometry and the distance → similarity mapping, checked against their definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from facesearch.engine.align import TEMPLATE, align_face, similarity_transform
from facesearch.engine.quality import QualityFilter, assess_quality, estimate_pose, quality_reasons
from facesearch.engine.similarity import (
    DEFAULT_MATCH_DISTANCE,
    FMR_CURVE,
    TAIL_SLOPE,
    distance_from_similarity,
    fmr_at_similarity,
    legacy_to_current,
    log10_fmr_at_distance,
    similarity_at_fmr,
    similarity_from_distance,
)


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = math.radians(20), 2.5, np.array([30.0, -12.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    dst = TEMPLATE @ rot.T + shift
    m = similarity_transform(TEMPLATE, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


@pytest.mark.parametrize("face_scale", [0.5, 1.0, 4.0, 9.0])
def test_aligned_chip_puts_the_landmarks_where_the_template_says(face_scale):
    """Draw dots at scaled template points in a big image; after alignment they sit at the template."""
    size = int(200 * face_scale) + 50
    img = np.zeros((size, size, 3), dtype=np.uint8)
    points = TEMPLATE * face_scale + 20
    radius = max(int(2 * face_scale), 1)
    for x, y in points:
        yy, xx = np.ogrid[:size, :size]
        img[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = 255
    chip = align_face(img, points)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    for x, y in TEMPLATE:
        assert chip[round(y), round(x)].mean() > 100  # the dot landed at the template point


def test_a_face_outside_the_image_yields_a_black_chip_not_a_crash():
    chip = align_face(np.zeros((10, 10, 3), np.uint8), TEMPLATE + 1000)
    assert chip.shape == (150, 150, 3) and chip.max() == 0


def test_frontal_template_has_zero_pose_and_roll_follows_the_eye_line():
    roll, yaw, pitch = estimate_pose(TEMPLATE)
    assert abs(roll) < 1e-6 and abs(yaw) < 0.1 and abs(pitch) < 1e-6
    a = math.radians(30)
    rotated = TEMPLATE @ np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]).T
    assert estimate_pose(rotated)[0] == pytest.approx(30, abs=1e-6)


def test_nose_towards_one_eye_reads_as_yaw():
    turned = TEMPLATE.copy()
    turned[2, 0] += 20
    assert estimate_pose(turned)[1] > 30


def test_quality_filter_names_each_failing_reason():
    chip = np.full((150, 150, 3), 3, dtype=np.uint8)  # black, flat: dark and blurry
    q = assess_quality(chip, TEMPLATE, (0, 0, 10, 10))
    reasons = quality_reasons(q, 0.5, QualityFilter.HIGH)
    assert {"LOW_CONFIDENCE", "SMALL_BOUNDING_BOX", "LOW_SHARPNESS", "LOW_BRIGHTNESS"} <= set(reasons)
    assert quality_reasons(q, 0.5, "NONE") == []


def test_similarity_is_90_at_the_default_match_distance_and_monotone():
    assert similarity_from_distance(DEFAULT_MATCH_DISTANCE) == pytest.approx(90.0)
    sims = similarity_from_distance(np.linspace(0, FMR_CURVE[-1][0], 60))
    assert np.all(np.diff(sims) < 0) and sims[0] > 99.99 and sims[-1] == pytest.approx(0.0)
    assert similarity_from_distance(2.0) == 0.0  # beyond every impostor distance LFW has


@pytest.mark.parametrize(("similarity", "fmr"), [(90.0, 1e-3), (95.0, 1.25e-4), (99.0, 1e-6), (50.0, 0.125)])
def test_a_similarity_stands_for_a_false_match_rate(similarity, fmr):
    """The scale's one sentence: a share ((100 − S)/100)³ of different-person pairs scores S or more."""
    assert fmr_at_similarity(similarity) == pytest.approx(fmr)
    assert similarity_at_fmr(fmr) == pytest.approx(similarity)
    assert 10 ** log10_fmr_at_distance(distance_from_similarity(similarity)) == pytest.approx(fmr)


def test_the_curve_is_lfws_measured_knots_and_a_straight_tail_below_them():
    d0, level0 = FMR_CURVE[0]
    assert log10_fmr_at_distance(d0) == pytest.approx(level0)
    assert log10_fmr_at_distance(d0 - 0.1) == pytest.approx(level0 - 0.1 * TAIL_SLOPE)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(FMR_CURVE))


def test_legacy_similarities_convert_at_the_same_distance():
    assert legacy_to_current(80.0) == pytest.approx(similarity_from_distance(0.566))
    assert legacy_to_current(80.0) == pytest.approx(87.03, abs=0.01)


@pytest.mark.parametrize("threshold", [1.0, 50.0, 80.0, 95.0, 99.0, 99.9])
def test_distance_from_similarity_inverts_the_mapping(threshold):
    assert similarity_from_distance(distance_from_similarity(threshold)) == pytest.approx(threshold)


def test_similarity_out_of_range_is_refused():
    with pytest.raises(ValueError):
        distance_from_similarity(101)
