"""Narrow work-arounds for Ray Tune behaviour we measured, each explained and applied once per driver."""

from __future__ import annotations

import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)


def keep_requeued_trials_alive(controller_cls: type | None = None) -> None:
    """Stop a stale failure of a dead trial actor from erroring a trial Tune has already requeued.

    Seen with Ray Tune 2.60 (tests/search/test_faults.py): when a node dies while a trial on it has two
    calls in flight (it is starting, or saving while reporting), both calls fail a few ms apart. Tune
    handles the first as it should: it counts the failure and requeues the trial as PENDING to restart it
    from its last checkpoint. The second failure then reaches a PENDING trial, and for a PENDING trial Tune
    takes its "cannot recover" branch and errors the trial for good, without consulting ``max_failures``.
    That failure carries no news (it reports on the actor already given up), so it is dropped here; any
    other failure, and every failure of a RUNNING trial, goes through Tune unchanged. ``controller_cls``
    (Tune's ``TuneController`` by default) is the class patched.
    """
    from ray.exceptions import RayActorError
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial

    controller_cls = controller_cls or TuneController
    original = controller_cls._process_trial_failure
    if getattr(original, "_adaptune_wrapped", False):
        return

    @functools.wraps(original)
    def process_trial_failure(self: Any, trial: Any, exception: Exception) -> None:
        if trial.status == Trial.PENDING and isinstance(exception, RayActorError):
            logger.info("trial %s: ignoring a second failure of its lost actor; it is already requeued", trial)
            return
        original(self, trial, exception)

    process_trial_failure._adaptune_wrapped = True  # type: ignore[attr-defined]
    controller_cls._process_trial_failure = process_trial_failure
