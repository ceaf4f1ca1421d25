"""search/compat.py's work-around, on Ray Tune's own controller and trial classes (no Ray cluster needed)."""

from typing import Any

import pytest
from ray.exceptions import ActorDiedError, RayActorError
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial

from adaptune.search.compat import keep_requeued_trials_alive


class RecordingController(TuneController):
    """Tune's controller class whose own failure handling only records what reached it."""

    def __init__(self) -> None:  # the failure path only, without starting an experiment
        self.handled: list[tuple[str, Exception]] = []

    def _process_trial_failure(self, trial: Any, exception: Any) -> None:
        self.handled.append((trial.status, exception))


keep_requeued_trials_alive(RecordingController)
keep_requeued_trials_alive(RecordingController)  # a second call must not wrap the wrapper


def trial_in(status: str) -> Trial:
    trial = Trial("adaptune_test", stub=True, config={})
    trial.set_status(status)
    return trial


@pytest.mark.parametrize("exception", [RayActorError(), ActorDiedError()])
def test_a_second_failure_of_a_lost_actor_leaves_the_requeued_trial_pending(exception):
    controller = RecordingController()
    trial = trial_in(Trial.PENDING)
    controller._process_trial_failure(trial, exception)
    assert controller.handled == [] and trial.status == Trial.PENDING and trial.num_failures == 0


@pytest.mark.parametrize("status, exception", [
    (Trial.RUNNING, RayActorError()),  # the first failure of a lost actor: Tune counts it and retries
    (Trial.PENDING, RuntimeError("boom")),  # not an actor loss: Tune decides, as before
])
def test_every_other_failure_goes_through_tune(status, exception):
    controller = RecordingController()
    controller._process_trial_failure(trial_in(status), exception)
    assert controller.handled == [(status, exception)]


def test_the_search_patches_tunes_own_controller():
    keep_requeued_trials_alive()
    assert getattr(TuneController._process_trial_failure, "_adaptune_wrapped", False)
