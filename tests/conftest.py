import os
import sys

import pytest

# Keep Ray quiet and local in tests; never let a test reach beyond loopback.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test (``item.report_call``...), for fixtures that clean up after a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _ray_starts_only_in_tests_marked_ray(request):
    """`make test` runs the tests marked ``ray`` one after another, and every other test beside them: a second Ray
    runtime on the host makes Ray's state API ambiguous (Ray Train's placement-group cleaner then leaks a worker
    group), so a test that starts Ray in process must say so."""
    ray = sys.modules.get("ray")
    running_before = ray is not None and ray.is_initialized()
    yield
    ray = sys.modules.get("ray")
    if not running_before and ray is not None and ray.is_initialized() and not request.node.get_closest_marker("ray"):
        pytest.fail("this test started Ray: mark it @pytest.mark.ray (see tests/run-suite)")


@pytest.fixture
def blobs_task():
    from adaptune.algorithms.synthetic import make_blobs_task

    return make_blobs_task(n_per_class=40)


def _check_final_metrics(metrics: dict) -> None:
    """A final epoch's metrics: every proxy finite except the opt-in fewshot one, which is NaN without labels."""
    import math

    for key, value in metrics.items():
        if key == "proxy_fewshot":
            assert math.isnan(value), key
        elif key.startswith("proxy_") or key in ("target_acc", "source_acc", "train_loss"):
            assert math.isfinite(value), key


@pytest.fixture
def check_final_metrics():
    return _check_final_metrics
