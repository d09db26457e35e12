"""Every registered detector passes the contract check (aigi.detectors.conformance.check_detector):
stages, declared capabilities, predict == the cached engine path, and a save/load round trip."""

import pytest

from aigi.detectors.registry import REGISTRY, get_detector_class


def tiny(name):
    """A small instance of each registered detector (shipped weights where they exist). A new detector
    adds its line here; the test below fails for a registered name without one."""
    from aigi import load_detector
    from aigi.detectors.aligngemini import AlignGemini, AlignGeminiConfig
    from aigi.detectors.gamma import Gamma, GammaConfig
    from aigi.detectors.pixel import PixelConfig, PixelExpert

    pixel = {"crop": 32, "width": 8, "depth": 2, "inference_crops": 3}
    makers = {
        "univfd": lambda: load_detector("univfd"),
        "item": lambda: load_detector("item"),
        "gamma": lambda: Gamma(GammaConfig(hidden=16, queries=1, heads=1)),
        "pixel": lambda: PixelExpert(PixelConfig(**pixel)),
        "aligngemini": lambda: AlignGemini(AlignGeminiConfig(pixel=pixel)),
    }
    return makers[name]() if name in makers else None


get_detector_class("univfd")  # fills the registry


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registered_detector_keeps_the_contract(name, sample_dir):
    from aigi.detectors.conformance import check_detector

    det = tiny(name)
    assert det is not None, f"add a small {name} to tiny() in tests/test_conformance.py"
    images = sorted(str(p) for p in (sample_dir / "real").glob("*.png"))[:2]
    images += sorted(str(p) for p in (sample_dir / "fake").glob("*.png"))[:2]
    got = check_detector(det, images)
    assert got["detector"] == name and got["images"] == 4


def test_the_check_catches_a_broken_promise(sample_dir):
    """A detector that claims a mask it does not give is caught."""
    from aigi.detectors.conformance import check_detector
    from aigi.detectors.pixel import PixelConfig, PixelExpert

    class Liar(PixelExpert):
        has_mask = True

    Liar.name = "pixel"  # looks registered, but the registry holds another class
    with pytest.raises(AssertionError, match="not registered"):
        check_detector(Liar(PixelConfig(crop=32, width=8, depth=2)), [str(next((sample_dir / "real").glob("*.png")))])
    Liar.name = "pixel"
    REGISTRY["liar-test"] = Liar
    Liar.name = "liar-test"
    try:
        with pytest.raises(AssertionError, match="has_mask=True"):
            check_detector(
                Liar(PixelConfig(crop=32, width=8, depth=2)), [str(next((sample_dir / "real").glob("*.png")))]
            )
    finally:
        del REGISTRY["liar-test"]
