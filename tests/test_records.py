"""The verdict rule by hand: the unsure band never swallows one side of the decision."""

import pytest

from aigi.records import decide, make_record, unsure_interval


def test_the_unsure_interval_by_hand():
    assert unsure_interval(0.5, 0.1) == pytest.approx((0.4, 0.6))  # room on both sides: the band whole
    # threshold 0.969 (what --fpr 0.01 gave the default): above it only half the room, 0.031 / 2
    assert unsure_interval(0.969, 0.1) == pytest.approx((0.869, 0.9845))
    assert unsure_interval(0.02, 0.1) == pytest.approx((0.01, 0.12))
    assert unsure_interval(0.7, 0.0) == (0.7, 0.7)


def test_a_score_far_past_a_high_threshold_is_decided():
    assert decide(0.99, 0.969, 0.1)[0] == "fake"  # was "unsure": |0.99 - 0.969| < 0.1
    assert decide(0.999, 0.95, 0.1)[0] == "fake"
    verdict, reason = decide(0.9, 0.969, 0.1)
    assert verdict == "unsure" and "between 0.869 and 0.984" in reason
    assert decide(0.85, 0.969, 0.1)[0] == "real"
    assert decide(0.005, 0.02, 0.1)[0] == "real"  # and below a low threshold
    assert make_record("a.png", p_fake=0.99, threshold=0.969, unsure_band=0.1)["verdict"] == "fake"
