import numpy as np
import pytest
import torch

from aigi.attribution import (
    answer,
    best_unknown_threshold,
    family_of,
    fit_attribution,
    fit_temperature,
    softmax_nll,
)


def test_families_by_maker_and_line():
    assert family_of("gpt-image-1") == family_of("chatgpt-image-gallery") == "openai"
    assert family_of("nano-banana-pro") == "google" and family_of("stylegan2") == "gan"
    assert family_of("my-own-model") == "my-own-model"  # an unlisted generator is its own family


def test_unknown_threshold_maximises_the_mean_of_both_rates():
    # known tops 0.9, 0.8, 0.4; held-out tops 0.3, 0.5. At 0.8: held-out 2/2 under it, known 2/3 at or over
    # it -> mean 5/6; at 0.5: 1/2 and 2/3 -> 7/12; at 0.4: 1/2 and 3/3 -> 3/4; at 0.9: 2/2 and 1/3 -> 2/3
    thr, unk, acc = best_unknown_threshold(np.array([0.9, 0.8, 0.4]), np.array([0.3, 0.5]))
    assert thr == 0.8 and unk == 1.0 and acc == pytest.approx(2 / 3)


def test_temperature_minimises_held_out_log_loss():
    # four images, logits (2, 0), three of class 0: the best p for class 0 is 3/4, so sigmoid(2 / T) = 3/4 and
    # T = 2 / ln 3; at T = 1 the log-loss is -(3 ln s(2) + ln s(-2)) / 4
    z, y = np.array([[2.0, 0.0]] * 4), np.array([0, 0, 0, 1])
    s2 = 1 / (1 + np.exp(-2))
    assert softmax_nll(z, y) == pytest.approx(-(3 * np.log(s2) + np.log(1 - s2)) / 4)
    assert fit_temperature(z, y) == pytest.approx(2 / np.log(3), rel=1e-4)


def test_answer_names_the_top_family_or_unknown():
    probs = np.array([0.1, 0.7, 0.2])
    a = answer(probs, ["openai", "google", "gan"], 0.5)
    assert a == {"family": "google", "p": 0.7, "top3": [["google", 0.7], ["gan", 0.2], ["openai", 0.1]]}
    assert answer(probs, ["openai", "google", "gan"], 0.8)["family"] == "unknown"


def _families(noise: float = 0.3):
    """30 images of each of four families, each a unit direction (x4) plus Gaussian noise."""
    rng = np.random.default_rng(0)
    centres = {"sd-1.5": 0, "gpt-4o": 1, "stylegan2": 2, "nano-banana": 3}
    X, gens = [], []
    for g, c in centres.items():
        for _ in range(30):
            x = rng.normal(size=8) * noise
            x[c] += 4.0
            X.append(x)
            gens.append(g)
    return np.array(X, np.float32), np.array(gens), np.arange(len(X))


def test_fit_attribution_separates_families_and_leaves_a_new_one_unknown():
    rng = np.random.default_rng(1)
    X, gens, groups = _families()
    # twins of real images are not a generator; a family with too few images is not named
    X = np.concatenate([X, rng.normal(size=(5, 8)).astype(np.float32)])
    gens = np.concatenate([gens, ["autoencoder-reconstruction"] * 3, ["kolors"] * 2])
    groups = np.concatenate([groups, np.arange(120, 125)])
    head = fit_attribution(X, gens, groups, C=1.0)
    assert head.families == ["gan", "google", "openai", "stability"]
    assert head.report["too_few_images"] == {"kuaishou": 2}  # kolors
    p = head.probabilities(X[:120])
    truth = [head.families.index(family_of(g)) for g in gens[:120]]
    assert (p.argmax(1) == truth).mean() == 1.0
    # an image far from every family: its top probability is what the leave-family-out rule calls unknown
    assert head.report["held_out_answered_unknown"] > 0.5 and head.report["known_kept"] > 0.5
    assert 0 < head.unknown_below <= 1
    # the temperature is fitted on out-of-fold logits and can only lower their log-loss
    nll = head.report["held_out_nll"]
    assert head.temperature == head.report["temperature"] > 0 and nll["tempered"] <= nll["raw"] + 1e-9


def test_univfd_folds_the_temperature_into_its_family_logits():
    from aigi.detectors.univfd import UnivFD, UnivFDConfig

    X, gens, groups = _families(noise=1.5)  # overlapping families: the raw head is over-confident
    det = UnivFD(UnivFDConfig(feature_dim=8))
    report = det.fit_attribution(X[:, None, None, :], np.ones(len(X), int), gens, seed=0)
    head = fit_attribution(X, gens, groups, seed=0)
    assert report["temperature"] == head.temperature != 1.0
    with torch.no_grad():
        out = det({"features": torch.from_numpy(X[:5])})
    np.testing.assert_allclose(torch.softmax(out["family_logits"].double(), 1), head.probabilities(X[:5]), atol=1e-5)


def test_univfd_records_name_a_family_only_when_fake_or_unsure():
    from aigi.detectors.univfd import UnivFD, UnivFDConfig
    from aigi.records import make_record, with_operating_point

    det = UnivFD(UnivFDConfig(feature_dim=2))
    det.set_state({"families": ["gan", "openai"], "unknown_below": 0.6})
    with torch.no_grad():
        det.head.weight.copy_(torch.tensor([[1.0, 0.0]]))
        det.attr_weight.copy_(torch.tensor([[0.0, 2.0], [0.0, -2.0]]))
    out = det({"features": torch.tensor([[3.0, 1.0], [-3.0, 0.0]])})
    a = det.extra_fields(out, 0)["attribution"]
    # family logits (2, -2): softmax 1/(1+e^-4) = 0.982 for gan
    assert a["family"] == "gan" and a["p"] == pytest.approx(1 / (1 + np.exp(-4)), abs=1e-4)
    assert det.extra_fields(out, 1)["attribution"]["family"] == "unknown"  # (0, 0): 0.5 < 0.6
    fake = make_record("a.png", p_fake=0.9, threshold=0.5, attribution=a)
    real = make_record("b.png", p_fake=0.1, threshold=0.5, attribution=a)
    assert fake["attribution"] == a and "attribution" not in real
    assert "attribution" not in with_operating_point(fake, 0.95, 0.0)  # real at a stricter threshold
    assert det.get_state() == {"families": ["gan", "openai"], "unknown_below": 0.6}


def test_attribution_metrics_count_only_flagged_fakes():
    from aigi.evaluation.attribution import attribution_metrics

    gens = ["gpt-4o", "gpt-image-1", "sdxl", "seedream-5", "seedream-5", "camera"]
    labels = [1, 1, 1, 1, 1, 0]
    flagged = [True, True, False, True, True, True]
    ans = [{"family": "openai", "p": 0.9, "top3": [["openai", 0.9]]},
           {"family": "unknown", "p": 0.5, "top3": [["openai", 0.5]]},
           {"family": "openai", "p": 0.8, "top3": [["openai", 0.8]]},
           {"family": "unknown", "p": 0.4, "top3": [["google", 0.4]]},
           {"family": "google", "p": 0.7, "top3": [["google", 0.7]]},
           {"family": "openai", "p": 0.9, "top3": [["openai", 0.9]]}]  # fmt: skip
    m = attribution_metrics(gens, labels, flagged, ans, ["openai", "google", "stability"])
    # openai: 2 flagged, 1 named right, 1 unknown; sdxl not flagged; bytedance (new): 2, 1 unknown; the real ignored
    assert m["per_family"]["openai"] == {"known": True, "n": 2, "named_right": 0.5, "unknown": 0.5}
    assert m["per_family"]["bytedance"] == {"known": False, "n": 2, "named_right": 0.0, "unknown": 0.5}
    assert set(m["per_family"]) == {"openai", "bytedance"}
    assert m["known_named_right"] == 0.5 and m["new_answered_unknown"] == 0.5
    # p's calibration over the known family's two flagged fakes, both with openai on top: bins of 0.9 and 0.5,
    # |1 - 0.9| / 2 + |1 - 0.5| / 2 = 0.3
    assert m["p_ece"] == pytest.approx(0.3)
