import os

import pytest

# Keep Ray quiet and local in tests; never let a test reach beyond loopback.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


@pytest.fixture
def blobs_task():
    from adaptune.algorithms.synthetic import make_blobs_task

    return make_blobs_task(n_per_class=40)
