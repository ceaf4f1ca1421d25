import pandas as pd
import pytest

from adaptune.reports.proxy_quality import proxy_quality, weighted_spearman
from adaptune.reports.run_dir import RunDir
from adaptune.search.cli import main


def _history():
    return pd.DataFrame({"trial_id": list("abcd"), "target_acc": [0.1, 0.2, 0.3, 0.4],
                         "proxy_good": [1.0, 2.0, 3.0, 4.0], "proxy_bad": [4.0, 3.0, 2.0, 1.0]})


def test_perfect_and_reversed_proxies():
    table = proxy_quality(_history()).set_index("proxy")
    assert table.loc["good", "spearman"] == pytest.approx(1.0)
    assert table.loc["good", "weighted_spearman"] == pytest.approx(1.0)
    assert table.loc["good", "top1_regret"] == pytest.approx(0.0)
    assert table.loc["bad", "spearman"] == pytest.approx(-1.0)
    assert table.loc["bad", "weighted_spearman"] == pytest.approx(-1.0)
    assert table.loc["bad", "top1_regret"] == pytest.approx(0.3)  # picks the 0.1 point, best is 0.4
    assert table.loc["good", "topk_oracle_mean"] == pytest.approx(0.25)  # all four points are in the top 5


def test_weighted_spearman_hand_computed():
    # dense ranks /max: x = [1/3, 2/3, 1], y = [1/3, 1, 2/3]; weights max^2 = [1/9, 1, 1] -> normalised [1, 9, 9]/19
    # weighted means 0.80702 each; weighted cov -0.013849, weighted var 0.038781 -> r = -0.3571
    value = weighted_spearman(pd.Series([1.0, 2.0, 3.0]), pd.Series([1.0, 3.0, 2.0]))
    assert value == pytest.approx(-0.3571, abs=1e-3)


def test_cli_writes_proxies_parquet_and_refuses_runs_without_labels(tmp_path, capsys):
    RunDir(str(tmp_path)).write_table(RunDir.HISTORY, _history())
    assert main(["proxies", str(tmp_path)]) == 0
    assert (tmp_path / "proxies.parquet").exists()
    unlabeled = tmp_path / "unlabeled"
    RunDir(str(unlabeled)).write_table(RunDir.HISTORY, _history().assign(target_acc=float("nan")))
    with pytest.raises(SystemExit) as exit_info:
        main(["proxies", str(unlabeled)])
    assert exit_info.value.code == 2 and "no target labels" in capsys.readouterr().err
