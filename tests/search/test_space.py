import optuna

from adaptune.search.space import all_param_names, closed_form_points, default_points, define_space, make_space

RANGES = {"lr": (1e-4, 1e-1), "freeze_depth": (0, 2), "adv_weight": (1e-2, 3.0)}


def _sample(methods, n=30, ranges=RANGES, preprocess=()):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    configs = []
    for _ in range(n):
        trial = study.ask()
        constants = define_space(trial, methods, ranges, preprocess)
        configs.append({**trial.params, **constants})
        study.tell(trial, 0.0)
    return configs


def test_space_is_conditional_on_the_method():
    configs = _sample(["source_only", "dann"])
    assert {c["method"] for c in configs} == {"source_only", "dann"}
    for c in configs:
        assert 1e-4 <= c["lr"] <= 1e-1 and 0 <= c["freeze_depth"] <= 2
        if c["method"] == "dann":
            assert 1e-2 <= c["adv_weight"] <= 3.0 and c["disc_hidden"] in (256, 512, 1024)
        else:
            assert "adv_weight" not in c and "disc_hidden" not in c


def test_several_preprocessings_are_one_more_knob_of_every_method():
    configs = _sample(["source_only", "dann"], preprocess=("zscore", "domain-scale"))
    for method in ("source_only", "dann"):
        assert {c["preprocess"] for c in configs if c["method"] == method} == {"zscore", "domain-scale"}
    assert all("preprocess" not in c for c in _sample(["dann"], n=3))
    points = default_points(["source_only", "dann", "coral"], RANGES, ("zscore", "domain-scale"))
    assert [p["preprocess"] for p in points] == ["zscore", "domain-scale", "zscore"]


def test_one_point_range_becomes_a_constant():
    configs = _sample(["source_only"], n=3, ranges={**RANGES, "freeze_depth": (0, 0)})
    assert all(c["freeze_depth"] == 0 for c in configs)


def test_default_points_cover_every_method_with_defaults():
    points = default_points(["source_only", "dann"], RANGES)
    assert [p["method"] for p in points] == ["source_only", "dann"]
    assert points[1]["adv_weight"] == 1.0 and points[1]["disc_hidden"] == 512 and "adv_weight" not in points[0]


def test_closed_form_draws_are_seeded_in_range_and_taken_round_by_round():
    methods = ["dann", "coral", "tca", "source_only"]
    points = closed_form_points(methods, RANGES, draws=3, seed=7)
    assert [p["method"] for p in points] == ["coral", "tca"] * 3  # only closed-form methods, every first draw first
    assert points == closed_form_points(methods, RANGES, draws=3, seed=7)
    assert points != closed_form_points(methods, RANGES, draws=3, seed=8)
    assert closed_form_points(methods, RANGES, draws=0, seed=7) == []
    study = optuna.create_study()
    for point in points:  # every value lies in the space the sampler searches, so Optuna accepts it as a trial
        study.enqueue_trial(point)
        trial = study.ask()
        define_space(trial, methods, RANGES)
        assert trial.params == point


def test_space_function_pickles_for_tune():
    import pickle

    space = pickle.loads(pickle.dumps(make_space(["dann"], RANGES)))
    assert space.keywords["methods"] == ["dann"]
    assert {"lr", "freeze_depth", "adv_weight", "disc_hidden"} <= set(all_param_names())


def test_the_defaults_run_in_the_order_the_methods_are_listed():
    from adaptune.search.config import build_config

    listed = build_config({"methods": ["source_only", "mcc"]}).methods
    assert [p["method"] for p in default_points(listed, RANGES)] == ["source_only", "mcc"]
