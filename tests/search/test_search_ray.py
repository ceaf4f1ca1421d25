"""Integration: real Ray Tune + Optuna + Parquet, on a tiny in-memory task."""

import json
import math
import time
import warnings

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from adaptune.reports.leaderboard import LEADERBOARD_COLUMNS, at_most_per_method, selection_order
from adaptune.reports.run_dir import RunDir, schema_version
from adaptune.search.cli import main
from adaptune.search.config import build_config
from adaptune.search.run import prepare, run_search

pytestmark = pytest.mark.ray


def _start_ray() -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False)


@pytest.fixture(scope="module")
def ray_runtime():
    import ray

    _start_ray()
    yield
    ray.shutdown()


def _restart_ray() -> None:
    import ray

    ray.shutdown()
    _start_ray()


def _all_cpus_free(within_s: float) -> bool:
    import ray

    deadline = time.monotonic() + within_s
    while ray.available_resources().get("CPU", 0.0) < ray.cluster_resources().get("CPU", 0.0):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture
def ray_local(ray_runtime, request):
    """The module's Ray runtime with every CPU free: the placement groups of the last test's Ray Train runs are
    removed a little after its search ends (Train's cleaner polls), and a test that failed may have left trials
    holding CPUs for good, so the runtime is restarted after a failure or when the CPUs stay held."""
    if not _all_cpus_free(within_s=30):
        warnings.warn("Ray's CPUs were still held 30 s after the last test; restarted Ray", stacklevel=1)
        _restart_ray()
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        _restart_ray()


def _search(out, **overrides):
    raw = {"task": "synthetic:blobs", "trials": 4, "epochs": 3, "out": str(out), "steps_per_epoch": 60,
           "batch_size": 16, "quiet": True, "methods": ["source_only", "dann"], "proxy": "im", "source_gap": "none",
           **overrides}
    return run_search(prepare(build_config(raw)))


def test_tune_search_writes_leaderboard_and_history(ray_local, tmp_path, capsys):
    out = tmp_path / "run"
    summary = _search(out, source_gap=0.002, ensemble_per_method=1)
    everything = pq.read_table(out / "leaderboard.parquet").to_pandas()
    board = everything[everything["status"] != "ensemble"].reset_index(drop=True)
    assert len(board) == 4 and summary["trials"] == 4
    assert set(LEADERBOARD_COLUMNS) <= set(board.columns)
    assert {"proxy_source_acc", "proxy_entropy", "proxy_im", "disc_hidden"} <= set(board.columns)
    assert set(board["status"]) <= {"completed", "stopped"} and "completed" in set(board["status"])
    assert set(board["method"]) == {"source_only", "dann"}  # each method's defaults run first
    assert (board["proxy"] == "im").all() and board["score"].equals(board["proxy_im"])
    # Ranked by the proxy, the trials within 0.2 points of the best held-out source accuracy first.
    assert summary["source_gap"] == 0.002
    admitted, held_back = selection_order(board.to_dict("records"), 0.002)
    assert [r["rank"] for r in admitted + held_back] == [1, 2, 3, 4]
    assert board.loc[board["method"] == "source_only", "adv_weight"].isna().all()
    assert board["target_acc"].between(0, 1).all() and board["node_id"].notna().all()
    assert json.loads(board["versions"][0]).keys() == {"adaptune", "ray", "torch", "optuna"}
    assert schema_version(str(out / "leaderboard.parquet")) == "1"

    # ASHA's rungs are in optimizer steps: a stopped trial ends at a rung, never before the grace period.
    plan = summary["plan"]
    assert plan["steps_per_epoch"] == 60 and plan["grace_steps"] == 120 and plan["rungs"] == [120]
    assert set(board["steps"]) <= {120, 180} and summary["steps_used"] == board["steps"].sum()
    # The default (auto) records the kind it picked: zscore, since the blobs' columns keep their spread across domains.
    assert (board["preprocess"] == "zscore").all() and summary["preprocess"] == "zscore"
    assert summary["preprocess_requested"] == "auto"

    history = pq.read_table(out / "history.parquet").to_pandas()
    assert len(history) == int(board["epochs"].sum())
    for _, row in board.iterrows():  # the reported score is the trial's best epoch by the proxy
        epochs = history[history["trial_id"] == row["trial_id"]]
        assert math.isclose(row["score"], epochs["proxy_im"].max())
    assert summary["max_running"] >= 2, "trials ran one at a time"

    # The ensemble row: the top trials by the proxy (k=5), at most one of each method here, predictions averaged.
    ensemble = everything[everything["status"] == "ensemble"]
    assert len(ensemble) == 1
    row = ensemble.iloc[0]
    members = [r["trial_id"] for r in at_most_per_method(admitted, 1)]
    assert 1 <= len(members) <= 2  # two methods
    assert row["members"].split(",") == members and row["trial_id"] == f"ensemble-top{len(members)}"
    assert pd.isna(row["rank"])  # shown, not ranked among the trials
    assert 0 <= row["target_acc"] <= 1 and math.isclose(row["score"], row["proxy_im"])
    assert math.isnan(row["proxy_source_acc"])  # needs source predictions, which an ensemble row has none of
    recommended = summary["recommendation"]  # recommend: ensemble, the default
    assert recommended["kind"] == "ensemble" and recommended["trial_id"] == row["trial_id"]
    assert recommended["members"] == members and recommended["proxy"] == "im"
    assert recommended["methods"] == [board.set_index("trial_id").loc[t, "method"] for t in recommended["members"]]
    assert recommended["target_acc"] == row["target_acc"]
    # A feature table: the members' kept predictions averaged, then smoothed over target neighbourhoods (auto).
    from dataclasses import asdict

    from adaptune.algorithms.ensemble import AUTO_SMOOTHING, Smoothing, smooth_by_neighbours
    from adaptune.search.trial import resolve_task
    from benchmarks._common import kept_predictions

    assert summary["smoothing"] == recommended["smoothing"] == asdict(AUTO_SMOOTHING["features"])
    task = resolve_task("synthetic:blobs", None, None, 0, 0, summary["preprocess"])
    kept = torch.stack([kept_predictions(str(out), m, "proxy_im").float() for m in members]).mean(0)
    smoothed = smooth_by_neighbours(kept, task.target_val.x, Smoothing(**summary["smoothing"]))
    assert math.isclose(row["target_acc"], float((smoothed.argmax(1) == task.target_oracle).float().mean()))
    # What to ship, as a table: the recommended (smoothed) predictions, one row per target sample.
    shipped = pq.read_table(out / "predictions.parquet").to_pandas()
    assert shipped["target_index"].tolist() == list(range(len(task.target_val)))
    assert shipped["predicted"].tolist() == [task.classes[i] for i in smoothed.argmax(1).tolist()]
    assert torch.allclose(torch.tensor(list(shipped["probs"])), smoothed, atol=1e-6)
    assert torch.allclose(torch.tensor(shipped["confidence"].to_numpy()), smoothed.max(1).values, atol=1e-6)

    capsys.readouterr()
    assert main(["leaderboard", str(out), "--format", "json", "--top", "2"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_several_preprocessings_are_drawn_per_trial_and_recorded(ray_local, tmp_path, capsys):
    """preprocess: [zscore, domain-scale]: the methods' default points take the kinds in turn, each trial trains on
    the data as its kind preprocesses it, and the leaderboard, ensemble row and summary say which."""
    from adaptune.algorithms.loop import run_trial
    from adaptune.search.run import trial_settings

    out = tmp_path / "run"
    raw = {"preprocess": ["zscore", "domain-scale"], "methods": ["source_only", "coral"], "trials": 3, "epochs": 2}
    summary = _search(out, **raw)
    everything = pq.read_table(out / "leaderboard.parquet").to_pandas()
    board = everything[everything["status"] != "ensemble"].set_index("trial_id")
    assert summary["preprocess"] == "zscore|domain-scale"
    assert everything.loc[everything["status"] == "ensemble", "preprocess"].item() == "zscore|domain-scale"
    assert set(board["preprocess"]) == {"zscore", "domain-scale"}
    first = board.sort_values("started_at").groupby("method").head(1)
    assert dict(zip(first["method"], first["preprocess"])) == {"source_only": "zscore", "coral": "domain-scale"}

    # The coral trial's score is what coral scores on the domain-scaled task outside Ray (a closed-form head).
    prepared = prepare(build_config({"task": "synthetic:blobs", "out": str(tmp_path / "direct"), "proxy": "im",
                                     "batch_size": 16, "steps_per_epoch": 60, **raw}))
    settings = trial_settings(prepared, str(tmp_path / "storage"))
    scores = {}
    for kind in ("zscore", "domain-scale"):
        config = {"method": "coral", "head_l2": first.loc[first["method"] == "coral", "head_l2"].item(),
                  "preprocess": kind}
        reports: list[dict] = []
        run_trial(settings.load_task(config), settings.trial_spec(config), lambda m, _, seen=reports: seen.append(m))
        scores[kind] = max(r["proxy_im"] for r in reports)
    coral = first[first["method"] == "coral"]["score"].item()
    assert math.isclose(coral, scores["domain-scale"], rel_tol=1e-4)
    assert not math.isclose(coral, scores["zscore"], rel_tol=1e-3)

    capsys.readouterr()
    assert main(["leaderboard", str(out), "--top", "3"]) == 0
    assert "preprocess=domain-scale" in capsys.readouterr().out


def test_one_trial_at_a_time_the_same_seed_repeats_the_search_exactly(ray_local, tmp_path):
    """Optuna's seeded sampler proposes the same trials and each trains from the same seeds, so with one trial at a
    time the leaderboard repeats (side by side, TPE and ASHA see results in the order trials happen to finish)."""
    boards = []
    for name in ("a", "b"):
        _search(tmp_path / name, trials=3, epochs=1, steps_per_epoch=10, ensemble_k=0, seed=3,
                resources={"max_concurrent": 1})
        board = pq.read_table(tmp_path / name / "leaderboard.parquet").to_pandas()
        boards.append(board[["rank", "method", "lr", "adv_weight", "freeze_depth", "steps", "score", "source_acc",
                             "target_acc"]].sort_values("rank").reset_index(drop=True))
    assert boards[0]["lr"].nunique() == 2  # each method's defaults (lr 0.01), then one of TPE's proposals
    pd.testing.assert_frame_equal(boards[0], boards[1])


def test_every_train_report_reaches_the_trial_even_one_put_as_the_run_ends(ray_local):
    """The relay hands on every report in order, those put while the run goes on and the one put just before it
    returns, then raises what the run raised."""
    from ray.util.queue import Queue

    from adaptune.search.trial import relay_reports

    reports, received = Queue(actor_options={"num_cpus": 0}), []

    def fit():
        for epoch in (1, 2):
            time.sleep(0.3)
            reports.put({"epoch": epoch})
        reports.put({"epoch": 3})  # the last report, as the run ends
        raise RuntimeError("worker group lost")

    with pytest.raises(RuntimeError, match="worker group lost"):
        relay_reports(fit, reports, received.append, poll_s=0.05)
    assert [item["epoch"] for item in received] == [1, 2, 3]
    reports.shutdown()


def test_train_runner_trials_are_data_parallel_train_runs_and_go_on_after_asha_stops_one(ray_local, tmp_path):
    """Ray Train with two workers per trial: DDP over gloo, each rank on its shard of every epoch, and a trial's
    Train checkpoint (reported by path) reaches the ensemble.

    A stopped trial's actor is still inside its Train run; reusing it for the next trial failed, erred that trial
    and held the search until Tune's forced cleanup, ten minutes later (past the suite's 300 s timeout)."""
    out = tmp_path / "run"
    # One trial at a time (a Train run costs ~25 s here, so three is the least that shows it): dann's defaults
    # set the rung, source_only's defaults score far below them there and ASHA stops it, and a third trial follows.
    summary = _search(out, trials=3, epochs=3, steps_per_epoch=50, batch_size=64, ensemble_k=1,
                      methods=["dann", "source_only"], resources={"workers": 2, "cpus_per_trial": 0.75})
    assert summary["runner"] == "train" and summary["max_concurrent"] == 1  # auto picks Ray Train for workers > 1
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    trials = board[board["status"] != "ensemble"]
    ended = trials.sort_values("ended_at")["status"].tolist()
    assert "stopped" in ended[:-1], ended  # a trial ran after one that ASHA stopped
    assert set(ended) <= {"completed", "stopped"} and summary["trials"] == 3
    assert trials["score"].map(math.isfinite).all() and any((out / "ray").glob("train-*"))
    ensemble = board[board["status"] == "ensemble"]
    assert ensemble["members"].item() == trials.loc[trials["score"].idxmax(), "trial_id"]
    assert 0 <= ensemble["target_acc"].item() <= 1


def test_a_stopped_trial_stays_with_its_train_run_so_tune_cannot_reuse_the_actor_under_it(ray_local):
    from ray.util.queue import Queue

    from adaptune.search.trial import relay_reports

    reports, ended = Queue(actor_options={"num_cpus": 0}), []

    def fit():
        reports.put({"epoch": 1})
        time.sleep(1.0)
        ended.append(True)

    def report(item):
        raise SystemExit(0)  # what tune.report raises in a trial that Tune stopped

    with pytest.raises(SystemExit):
        relay_reports(fit, reports, report, poll_s=0.05)
    assert ended == [True]
    reports.shutdown()


def test_a_trial_whose_results_never_arrive_is_recorded_as_an_error_and_the_search_goes_on(ray_local, tmp_path,
                                                                                         monkeypatch):
    """Tune's strict metric check would end the whole search on such a trial's final result; the search's driver
    turns it off, and the recorder records the one trial as an error."""
    monkeypatch.delenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", raising=False)  # as in a fresh driver
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from adaptune.search.recorder import NO_RESULT, Recorder
    from adaptune.search.run import _fit

    def trainable(config):
        if config["x"] == 1:
            return  # as if every report of this trial had been lost on the way
        tune.report({"proxy_im": 0.5, "epoch": 1})

    recorder = Recorder(str(tmp_path / "run"), proxy="im", epochs=1, total_trials=2, param_names=["x"],
                        proxy_names=["im"], config_hash="abc", seed=0, versions="{}", quiet=True)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}), param_space={"x": tune.grid_search([0, 1]), "method": "m"},
        tune_config=tune.TuneConfig(scheduler=ASHAScheduler(metric="proxy_im", mode="max", time_attr="epoch",
                                                            max_t=1)),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), callbacks=[recorder], verbose=0))
    assert _fit(tuner, recorder) is not None
    statuses = sorted((row["x"], row["status"], row.get("error")) for row in recorder.rows.values())
    assert statuses == [(0, "completed", None), (1, "error", NO_RESULT)]


def test_a_checkpoint_proxy_keeps_its_best_epoch_and_a_re_ranking_gives_back_the_ensemble(ray_local, tmp_path):
    """Each trial keeps its best epoch by the checkpoint proxy (im) and is ranked there by the selecting proxy;
    benchmarks.checkpoint_proxy re-ranks the search's trials at their kept epochs as the search itself does."""
    from adaptune.search.trial import resolve_task
    from benchmarks._common import kept_predictions
    from benchmarks.checkpoint_proxy import IM, SPLIT, rerank_run

    out, task_name = tmp_path / "run", "office-surf:W->D"
    summary = _search(out, task=task_name, trials=3, epochs=3, proxy="neighbour_agreement", checkpoint_proxy="im",
                      ensemble_k=1, scheduler={"kind": "none"})
    assert (summary["proxy"], summary["checkpoint_proxy"]) == ("neighbour_agreement", "im")
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    trials = board[board["status"] != "ensemble"]
    history = pq.read_table(out / "history.parquet").to_pandas()
    task = resolve_task(task_name, None, None, 0, 0, summary["preprocess"])
    for row in trials.itertuples():
        epochs = history[history["trial_id"] == row.trial_id].sort_values("epoch")
        best = epochs.loc[epochs["proxy_im"].idxmax()]
        assert (row.best_epoch, row.score) == (best["epoch"], best["proxy_neighbour_agreement"])
        # The kept checkpoint is im's best epoch: its predictions score that epoch's target accuracy.
        kept = kept_predictions(str(out), row.trial_id, "proxy_im").float()
        assert math.isclose(float((kept.argmax(1) == task.target_oracle).float().mean()), row.target_acc)
    assert summary["recommendation"]["members"] == [trials.loc[trials["score"].idxmax(), "trial_id"]]

    rows = {row["rule"]: row for row in rerank_run(str(out))}
    assert math.isclose(rows[SPLIT]["recommended"], rows[SPLIT]["recorded"], abs_tol=1e-6)
    assert rows[IM]["members"] == trials.loc[trials["proxy_im"].idxmax(), "method"]
    assert rows[SPLIT]["members"] == trials.loc[trials["proxy_neighbour_agreement"].idxmax(), "method"]


def test_a_budget_of_one_trial_per_method_covers_every_method(ray_local, tmp_path):
    methods = ["coral", "mcc", "linear_probe", "importance_weighting", "jda"]
    _search(tmp_path / "run", trials=len(methods), epochs=1, methods=methods, ensemble_k=0)
    board = pq.read_table(tmp_path / "run" / "leaderboard.parquet").to_pandas()
    assert sorted(board["method"]) == sorted(methods)
    assert board["freeze_depth"].isna().sum() == 3  # feature-extraction methods have no freeze_depth to search


def test_final_only_proxy_runs_every_trial_to_the_end_and_auto_resolves(ray_local, tmp_path):
    out = tmp_path / "run"
    _search(out, trials=2, epochs=2, proxy="circular", ensemble_k=0)
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    assert board["status"].tolist() == ["completed", "completed"]  # no early stopping without a value
    assert (board["best_epoch"] == 2).all() and board["score"].between(0, 1).all()

    from adaptune.algorithms.proxies import auto_proxies

    auto = prepare(build_config({"task": "synthetic:blobs", "proxy": "auto", "out": str(tmp_path / "a")}))
    assert (auto.proxy, auto.checkpoint_proxy) == auto_proxies("features")


def test_the_budget_plans_the_trials_and_a_closed_form_trial_reports_once(ray_local, tmp_path):
    """No trial count given: the budget sets it; closed-form methods fit their head once and count as complete, and
    their seeded draws run after the defaults on top of the budget."""
    out = tmp_path / "run"
    summary = _search(out, trials=None, budget=600, methods=["source_only", "coral"], ensemble_k=0,
                      closed_form_draws=1)
    plan = summary["plan"]
    # coral at its defaults and one draw + what 600 steps afford at 60 * (2 + 1/2) = 150 expected steps each
    assert plan["trials"] == 2 + 600 // 150 == summary["trials"] and plan["closed_form"] == 2
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    coral = board[board["method"] == "coral"]
    assert (coral["status"] == "completed").all() and (coral["epochs"] == 3).all()
    assert coral["head_l2"].notna().all() and coral["lr"].isna().all()
    assert len(coral) >= 2 and coral["head_l2"].nunique() >= 2


def test_no_trial_starts_once_the_budget_is_spent(ray_local, tmp_path):
    """One trial at a time, ASHA at rf 8 after one epoch: the plan expects 60 + 120/8 = 75 steps a trial and
    affords 4, but the first trial past a rung always continues (180 steps) and the second continues when it
    scores as well. Either way the budget of 300 is spent before the fourth trial, which never starts."""
    out = tmp_path / "run"
    summary = _search(out, trials=None, budget=300, ensemble_k=0, scheduler={"grace_period": 1, "reduction_factor": 8},
                      resources={"max_concurrent": 1})
    assert summary["plan"]["trials"] == 4 and summary["plan"]["capped"]
    assert summary["state"] == "finished" and summary["trials"] in (2, 3), summary
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    assert summary["steps_used"] == board["steps"].sum() >= 300
    assert set(board["method"]) == {"source_only", "dann"}  # both defaults ran
    status = json.loads((out / RunDir.STATUS).read_text())
    assert status["state"] == "finished" and status["pending"] == 0 and status["planned"] == 4


def test_random_searcher_without_early_stopping_shares_frozen_features(ray_local, tmp_path):
    """searcher: random draws every trial from the space (no defaults first); scheduler kind none stops nothing.
    With a frozen first block, the trials' processes share its outputs through the run's features/."""
    from adaptune.algorithms.methods import get_method

    out = tmp_path / "run"
    summary = _search(out, trials=3, epochs=2, steps_per_epoch=20, searcher="random", ensemble_k=0,
                      scheduler={"kind": "none", "grace_period": 1}, search_space={"freeze_depth": [1, 1]})
    assert summary["plan"]["rungs"] == [] and summary["plan"]["early_stopping"] is False
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    assert (board["status"] == "completed").all() and (board["epochs"] == 2).all()
    assert (board["freeze_depth"] == 1).all()
    defaults = {name: get_method(name).defaults()["lr"] for name in board["method"]}
    assert all(row.lr != defaults[row.method] for row in board.itertuples())
    # One file per distinct key (source_train, source_val, and the target, whose train and val samples are the
    # same) for all three trials: a trial process that had keyed them differently would have added its own.
    features = out / "features"
    assert len(list(features.glob("*.pt"))) == 3 and not list(features.glob("*.tmp"))


def test_diverging_trials_end_as_diverged_and_the_search_goes_on(ray_local, tmp_path):
    # lr 1000..10000 makes the loss NaN in epoch 1 for both methods (checked with the bare loop): each trial
    # ends with status diverged and the reason, not as an error, and the search still ends normally.
    out = tmp_path / "run"
    summary = _search(out, trials=2, epochs=2, steps_per_epoch=20, max_failures=0, ensemble_k=0,
                      search_space={"lr": [1000, 10000]})
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    assert summary["state"] == "finished" and not summary.get("all_failed"), summary
    assert len(board) == 2 and (board["status"] == "diverged").all(), board[["status", "error"]]
    assert board["error"].str.fullmatch(r"loss became nan in epoch 1").all(), board["error"].tolist()
    assert board["score"].isna().all() and board["rank"].isna().all()


def test_a_search_whose_every_trial_fails_says_so(ray_local, tmp_path):
    """The source file vanishes after the driver checked it: every trial raises InputError in its own process,
    whose message must survive the trip back to the driver (pickled and copied by Ray)."""
    import numpy as np

    for name in ("source", "target"):
        rng = np.random.default_rng(len(name))
        np.savez(tmp_path / f"{name}.npz", x=rng.normal(size=(60, 4)).astype("float32"), y=np.arange(60) % 2)
    raw = {"source": str(tmp_path / "source.npz"), "target": str(tmp_path / "target.npz"), "trials": 2,
           "epochs": 1, "steps_per_epoch": 5, "out": str(tmp_path / "run"), "quiet": True, "ensemble_k": 0,
           "methods": ["source_only"], "max_failures": 0}
    prepared = prepare(build_config(raw))
    (tmp_path / "source.npz").unlink()
    summary = run_search(prepared)
    failed = summary["all_failed"]
    assert failed and "InputError: source: path does not exist" in failed["message"], failed
    assert failed["traceback"].endswith("error.txt") and "source.npz" in open(failed["traceback"]).read()


def test_one_encoder_batch_may_span_two_domains_and_keeps_each_image_with_its_features(tmp_path):
    """The Ray Data pass numbers the images of every domain one after the other; a batch across a boundary is
    decoded from both domains, and each image's features come back under its own number."""
    import numpy as np
    from PIL import Image

    from adaptune.algorithms.images import ImageFiles
    from adaptune.search.precompute import _Encoder

    rng = np.random.default_rng(0)
    files = []
    for i in range(7):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(files[-1])
    domains = [ImageFiles(tuple(files[:3]), size=8), ImageFiles(tuple(files[3:]), size=8)]
    frozen = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    encoder = _Encoder(frozen, domains, threads=1, use_gpu=False)
    batch = encoder({"id": np.array([1, 2, 3, 4])})
    with torch.no_grad():
        expected = torch.cat([frozen(domains[0].load([1, 2])), frozen(domains[1].load([0, 1]))]).numpy()
    assert batch["id"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(batch["features"], expected, rtol=1e-6)


def test_ray_data_computes_the_frozen_features_of_an_image_folder_once(ray_local, tmp_path, capsys):
    """feature_engine ray_data: the driver encodes the folders with Ray Data before the trials, under the keys the
    trials compute; every full-freeze trial then reads the cache, and a trial at freeze depth 0 never needs it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for domain, shift in (("src", 0), ("tgt", 40)):
        for label in range(2):
            (tmp_path / domain / f"c{label}").mkdir(parents=True)
            for i in range(12):
                pixels = np.clip(rng.normal(60 + 100 * label + shift, 30, (20, 24, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / domain / f"c{label}" / f"{i}.png")
    out = tmp_path / "run"
    raw = {"source": str(tmp_path / "src"), "target": str(tmp_path / "tgt"), "image_size": 16, "backbone": "resnet18",
           "methods": ["linear_probe", "coral"], "trials": 2, "epochs": 1, "out": str(out), "quiet": False,
           "feature_engine": "ray_data", "ensemble_k": 0, "proxy": "im"}
    run_search(prepare(build_config(raw)))
    err = capsys.readouterr().err
    assert "adaptune: frozen resnet18 features of 48 images computed with Ray Data in" in err
    assert "(3 domains)" in err  # source train, source val, and the target (train = val)
    board = pq.read_table(out / "leaderboard.parquet").to_pandas()
    assert (board["status"] == "completed").all() and len(board) == 2
    # The three entries Ray Data wrote, and no other: a trial that keyed its features differently would have
    # added its own, and counted it.
    assert len(list((out / "features").glob("*.pt"))) == 3
    # recommend single (no ensemble row): the best trial's predictions, each beside its image file
    shipped = pq.read_table(out / "predictions.parquet").to_pandas()
    assert len(shipped) == 24 and set(shipped["predicted"]) <= {"c0", "c1"}
    assert sorted(shipped["file"]) == sorted(str(p) for p in (tmp_path / "tgt").rglob("*.png"))
    assert (pq.read_table(out / "history.parquet").to_pandas()["features_computed"] == 0).all()
    # Another search over the same cache finds every entry there.
    from adaptune.search.precompute import precompute_features
    from adaptune.search.run import trial_settings

    raw.update(out=str(tmp_path / "again"), feature_cache=str(out / "features"))
    again = prepare(build_config(raw))
    line = precompute_features(again, trial_settings(again, str(tmp_path / "again" / "ray")))
    assert line == "frozen resnet18 features of 48 images: already in the feature cache"
