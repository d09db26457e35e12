import math

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from aigi.calibration import Calibration, threshold_at_fpr
from aigi.evaluation.metrics import (
    accuracy,
    auroc,
    balanced_accuracy,
    binary_metrics,
    brier,
    class_accuracy,
    eer,
    expected_calibration_error,
    per_generator,
    tpr_at_fpr,
)

Y = [0, 0, 0, 0, 1, 1, 1, 1]
S = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]


def test_accuracies_by_hand():
    # at 0.5: reals 3/4 correct (0.6 flagged), fakes 3/4 (0.4 missed)
    assert accuracy(Y, S) == 0.75
    assert class_accuracy(Y, S) == (0.75, 0.75)
    assert balanced_accuracy(Y, S, 0.65) == pytest.approx((1.0 + 0.75) / 2)


def test_auroc_by_hand_and_against_sklearn():
    # pairs (fake > real): 0.4 beats 3 reals; 0.7, 0.8, 0.9 beat all 4 -> 15/16
    assert auroc(Y, S) == pytest.approx(15 / 16)
    assert auroc(Y, S) == pytest.approx(roc_auc_score(Y, S))
    assert math.isnan(auroc([1, 1], [0.2, 0.3]))


def test_eer_by_hand():
    # perfectly separable -> 0; the example: at t in (0.4, 0.6] FPR = 1/4, FNR = 1/4 -> 0.25
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert eer(Y, S) == pytest.approx(0.25)


def test_tpr_at_fpr_by_hand():
    # FPR 0 is reachable with t in (0.6, 0.7]: TPR = 3/4. FPR <= 1% also gives 3/4.
    assert tpr_at_fpr(Y, S, 0.0) == 0.75
    assert tpr_at_fpr(Y, S, 0.01) == 0.75
    assert tpr_at_fpr(Y, S, 0.25) == 1.0


def test_ece_and_brier_by_hand():
    # two bins in use with n_bins=2: [0, .5): scores .2,.2 labels 0,1 -> |0.5-0.2|; [.5,1]: .8,.8 labels 1,1 -> |1-.8|
    y, s = [0, 1, 1, 1], [0.2, 0.2, 0.8, 0.8]
    assert expected_calibration_error(y, s, n_bins=2) == pytest.approx(0.5 * 0.3 + 0.5 * 0.2)
    assert brier(y, s) == pytest.approx((0.04 + 0.64 + 0.04 + 0.04) / 4)
    assert brier(y, s) == pytest.approx(brier_score_loss(y, s))
    assert expected_calibration_error([1], [1.0], n_bins=10) == 0.0  # 1.0 lands in the last bin


def test_ece_falls_when_scores_are_calibrated():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    y = (rng.uniform(size=p.size) < p).astype(int)  # calibrated by construction
    overconfident = np.where(p > 0.5, 0.99, 0.01)
    assert expected_calibration_error(y, p) < 0.02 < 0.2 < expected_calibration_error(y, overconfident)


def test_binary_metrics_and_per_generator():
    m = binary_metrics(Y, S)
    assert m["n_real"] == 4 and m["auroc"] == pytest.approx(15 / 16) and m["tpr@5%fpr"] == 0.75
    gens = ["r1", "r1", "r2", "r2", "g1", "g1", "g2", "g2"]
    pg = per_generator(Y, S, gens)
    assert pg["g1"]["recall"] == 0.5 and pg["g2"]["recall"] == 1.0
    assert pg["r2"]["specificity"] == 0.5 and pg["r1"]["specificity"] == 1.0
    assert pg["g1"]["auroc_vs_all_reals"] == pytest.approx(7 / 8)  # 0.4 beats 3 of 4, 0.7 beats 4


def test_threshold_at_fpr_by_hand():
    reals = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    t = threshold_at_fpr(reals, 0.1)  # one real of 10 may reach t -> t just above 0.9
    assert 0.9 < t <= 0.9 + 1e-12
    assert np.mean(np.asarray(reals) >= t) == pytest.approx(0.1)
    assert threshold_at_fpr(reals, 0.0) > 0.95
    assert threshold_at_fpr(reals, 1.0) == 0.1
    cal = Calibration(real_scores=reals)
    assert cal.threshold_for() == 0.5 and cal.threshold_for(threshold=0.3) == 0.3
    with pytest.raises(ValueError):
        cal.threshold_for(threshold=0.3, fpr=0.1)
    with pytest.raises(ValueError, match="no validation real scores"):
        Calibration().threshold_for(fpr=0.05)


def test_fpr_target_is_met_on_held_out_reals():
    rng = np.random.default_rng(1)
    val, test = rng.beta(2, 5, 2000), rng.beta(2, 5, 20000)
    t = threshold_at_fpr(val, 0.05)
    fpr = np.mean(test >= t)
    assert abs(fpr - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 2000)  # within sampling error of the 2000 val reals


def test_calibration_maps_lower_ece_on_a_miscalibrated_score_set():
    from aigi.calibration import Calibration

    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.02, 0.98, 6000)
    y = (rng.uniform(size=true_p.size) < true_p).astype(int)
    z = np.log(true_p / (1 - true_p))
    over_z = 3.0 * z + 1.0  # an overconfident and shifted logit: a deliberately bad score
    over = 1 / (1 + np.exp(-over_z))
    fit, test = slice(0, 3000), slice(3000, None)
    before = expected_calibration_error(y[test], over[test])
    assert before > 0.1
    for method in ("temperature", "platt", "isotonic"):
        cal = Calibration.fit(over_z[fit], y[fit], method)
        after = expected_calibration_error(y[test], cal.apply_logit(over_z[test]))
        assert after < before / 2, (method, before, after)
    platt = Calibration.fit(over_z[fit], y[fit], "platt")
    assert platt.params["a"] == pytest.approx(1 / 3, abs=0.05)  # recovers the inverse of the distortion
    assert platt.params["b"] == pytest.approx(-1 / 3, abs=0.1)
    assert auroc(y[test], platt.apply_logit(over_z[test])) == pytest.approx(auroc(y[test], over[test]))  # ranking kept


def test_calibration_round_trips_through_json(tmp_path):
    from aigi.calibration import Calibration

    cal = Calibration.fit([-2.0, -0.4, -0.6, 1.4], [0, 0, 1, 1], "isotonic", unsure_band=0.05, source="t")
    cal.save(tmp_path)
    back = Calibration.load(tmp_path)
    assert back.method == "isotonic" and back.unsure_band == 0.05 and back.real_scores == cal.real_scores
    np.testing.assert_allclose(back.apply_logit([-9.0, -0.8, 2.2]), cal.apply_logit([-9.0, -0.8, 2.2]))


def test_selective_metrics_by_hand():
    from aigi.evaluation.metrics import selective_metrics

    # band 0.15 around 0.5: 0.4 and 0.6 are unsure -> 2/8; confident: 0.1,0.2,0.3 real ok; 0.7,0.8,0.9 fake ok
    m = selective_metrics(Y, S, 0.5, 0.15)
    assert m["unsure_fraction"] == 0.25 and m["n_confident"] == 6 and m["accuracy_confident"] == 1.0


def test_calibration_maps_logits_by_hand_without_clipping():
    from aigi.calibration import apply_calibration

    # platt: sigmoid(a z + b); at z = 0.5, a = 2, b = -1 -> sigmoid(0) = 0.5
    assert apply_calibration("platt", {"a": 2.0, "b": -1.0}, [0.5])[0] == pytest.approx(0.5)
    # temperature: sigmoid(z / T); z = 2, T = 2 -> sigmoid(1) = 0.7310585786300049
    assert apply_calibration("temperature", {"T": 2.0}, [2.0])[0] == pytest.approx(0.7310585786300049, abs=1e-12)
    # isotonic works on sigmoid(z): z = 0 -> 0.5, halfway between knots (0.2, 0) and (0.8, 1) -> 0.5
    assert apply_calibration("isotonic", {"x": [0.2, 0.8], "y": [0.0, 1.0]}, [0.0])[0] == pytest.approx(0.5)
    # a logit far past where a probability would have been clipped to 1e-6 keeps its meaning:
    # platt a = 0.1 at z = 40 is sigmoid(4) = 0.9820137900379085 (clipping at 1 - 1e-6 would give sigmoid(1.38))
    assert apply_calibration("platt", {"a": 0.1, "b": 0.0}, [40.0])[0] == pytest.approx(0.9820137900379085, abs=1e-12)
    assert apply_calibration("none", {}, [0.0])[0] == 0.5
