import pandas as pd

from denseseg.phantom.metadata import plan_release
from denseseg.phantom.seeds import choose_seed_images
from tests.phantom.tiny import plan_settings


def test_seed_choice_is_deterministic_spread_and_pa_only():
    plan = plan_release(4, plan_settings(n_patients=30))
    chosen = choose_seed_images(plan, 10)
    assert chosen == choose_seed_images(plan, 10) and len(chosen) == 10
    rows = plan.set_index("filestem").loc[chosen]
    assert (rows.projection == 1).all()
    assert rows.patient_id.nunique() == 10
    pa_ages = plan[plan.projection == 1].age
    assert rows.age.min() <= pa_ages.quantile(0.1) and rows.age.max() >= pa_ages.quantile(0.9)
    assert len(choose_seed_images(plan, 1000)) == (plan.projection == 1).sum()
    assert choose_seed_images(plan, 0) == [] and choose_seed_images(pd.DataFrame(plan.iloc[:0]), 3) == []
