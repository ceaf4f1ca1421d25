"""The user tables of benchmarks/user_tables.py: their shapes, and files that load as a user's would."""

import numpy as np

from adaptune.algorithms.data import load_user_task
from benchmarks.user_tables import TABLES, stratified_rows, write_tables


def test_stratified_rows_take_as_many_of_every_class_in_file_order():
    y = np.array([0] * 10 + [1] * 30 + [2] * 5)
    rows = stratified_rows(y, 12, np.random.default_rng(0))
    assert np.all(np.diff(rows) > 0)
    assert np.bincount(y[rows]).tolist() == [4, 4, 4]


def test_the_narrow_and_the_partial_tables_load_as_user_files(tmp_path):
    by_name = {table.name: table for table in TABLES}
    source, target = write_tables(by_name["reviews-29"], str(tmp_path))
    task = load_user_task(source, target)
    assert task.classes == ("negative", "positive")
    assert task.source_train.x.shape[1] == 29 and len(task.source_train.x) + len(task.source_val.x) == 720
    source, target = write_tables(by_name["surf-partial"], str(tmp_path))
    task = load_user_task(source, target)
    assert task.num_classes == 10 and sorted(task.target_oracle.unique().tolist()) == [0, 1, 2, 3, 4]
