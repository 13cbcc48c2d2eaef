from denseseg.anatomy import WRIST
from denseseg.phantom.growth import ONSET_YEARS, body_scale, bone_age, growth_state, maturity


def test_ossification_order_and_absence_when_young():
    assert ONSET_YEARS["capitate"] < ONSET_YEARS["triquetrum"] < ONSET_YEARS["lunate"] < ONSET_YEARS["scaphoid"]
    assert ONSET_YEARS["scaphoid"] < ONSET_YEARS["pisiform"]
    baby = growth_state(0.3, "M", 0.0, WRIST.structures)
    assert baby.present["capitate"] and not baby.present["hamate"] or baby.present["hamate"]
    for bone in ("scaphoid", "lunate", "triquetrum", "pisiform", "radius_epiphysis", "ulna_epiphysis"):
        assert not baby.present[bone]
    assert baby.present["radius"] and baby.present["metacarpal_3"]
    teen = growth_state(13.0, "M", 0.0, WRIST.structures)
    assert all(teen.present.values())


def test_growth_plates_close_and_size_grows():
    assert growth_state(10, "M", 0, WRIST.structures).physis_open["radius_epiphysis"]
    assert not growth_state(18.5, "M", 0, WRIST.structures).physis_open["radius_epiphysis"]
    scales = [body_scale(a, "M") for a in (0.2, 3, 8, 13, 18)]
    assert scales == sorted(scales) and scales[0] < 0.6 and scales[-1] > 0.95
    assert bone_age(10, "F") > bone_age(10, "M")  # girls mature earlier
    assert maturity("lunate", 3.0) == 0.0 < maturity("lunate", 6.0) < maturity("lunate", 20.0) == 1.0
