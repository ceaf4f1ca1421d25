"""The head-penalty benchmark's rules: chosen on the other groups, scored on the held-out one."""

from benchmarks.head_penalty import BASELINE, CLOSED_FORM, GRIDS, choose, gains, report

TASKS = ("office-surf:A->C", "office-surf:W->D", "amazon:B->D", "amazon:E->K")


def _rows(better: tuple[str, float], gain: float = 0.1) -> list[dict]:
    return [{"task": task, "method": method, "knob": knob, "value": value, "source_acc": 0.8,
             "target_acc": 0.5 + (gain if (knob, value) == better else 0.0), "head_s": 0.1, "transform_s": 0.2,
             "dim": 10, "energy": 10.0}
            for task in TASKS for method in CLOSED_FORM for knob in GRIDS for value in GRIDS[knob]]


def test_a_penalty_that_wins_everywhere_is_chosen_and_ties_keep_c_1():
    table = gains(_rows(("head_l2", 0.3)))
    assert set(choose(table, ["surf", "amazon"], "one l2").values()) == {("head_l2", 0.3)}
    assert set(choose(table, ["surf"], "one C").values()) == {BASELINE}  # no C beats C = 1: the tie keeps it


def test_the_page_ships_a_rule_only_above_min_gain():
    assert "Chosen on every group: l2=0.3. Held out it gains +10.00 points" in report(_rows(("head_l2", 0.3)), "x")
    assert "the default stays C = 1" in report(_rows(("head_l2", 0.3), gain=0.001), "x")
