"""How well each proxy ranks (trial, epoch) points against the oracle target accuracy.

For every ``proxy_<name>`` column of a run's history: Spearman and weighted Spearman correlation with
``target_acc`` (Musgrave, Belongie & Lim 2022: pairs weighted by max(rank)^pow so the top counts most),
top-1 regret (oracle best minus the oracle accuracy of the proxy's pick) and the mean oracle accuracy of the
proxy's top 5. Needs target labels in the run; selection itself never reads them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .run_dir import RunDir, RunError


def _pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    w = np.ones_like(x) if weights is None else weights
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    cov = (w * (x - mx) * (y - my)).sum()
    sx, sy = math.sqrt((w * (x - mx) ** 2).sum()), math.sqrt((w * (y - my) ** 2).sum())
    return float(cov / (sx * sy)) if sx > 0 and sy > 0 else float("nan")


def spearman(x: pd.Series, y: pd.Series) -> float:
    return _pearson(x.rank().to_numpy(float), y.rank().to_numpy(float))


def weighted_spearman(x: pd.Series, y: pd.Series, power: float = 2.0) -> float:
    """Pearson correlation of dense ranks scaled to [0, 1], each pair weighted by max(rank_x, rank_y)^power."""
    rx = x.rank(method="dense").to_numpy(float)
    ry = y.rank(method="dense").to_numpy(float)
    rx, ry = rx / rx.max(), ry / ry.max()
    return _pearson(rx, ry, np.maximum(rx, ry) ** power)


def proxy_quality(history: pd.DataFrame, top_k: int = 5) -> pd.DataFrame:
    """One row per proxy: spearman, weighted_spearman, top1_regret, topk_oracle_mean, points."""
    if "target_acc" not in history or history["target_acc"].isna().all():
        raise RunError("run: has no target labels (target_acc is empty); proxy quality needs an oracle")
    rows = []
    oracle_best = history["target_acc"].max()
    for column in sorted(c for c in history.columns if c.startswith("proxy_")):
        points = history[[column, "target_acc"]].replace([np.inf, -np.inf], np.nan).dropna()
        if len(points) < 2:
            continue
        ranked = points.sort_values(column, ascending=False, kind="stable")
        rows.append({
            "proxy": column.removeprefix("proxy_"),
            "spearman": spearman(points[column], points["target_acc"]),
            "weighted_spearman": weighted_spearman(points[column], points["target_acc"]),
            "top1_regret": float(oracle_best - ranked["target_acc"].iloc[0]),
            "topk_oracle_mean": float(ranked["target_acc"].head(top_k).mean()),
            "points": len(points),
        })
    return pd.DataFrame(rows).sort_values("weighted_spearman", ascending=False, kind="stable").reset_index(drop=True)


def write_proxy_quality(directory: str) -> pd.DataFrame:
    """The proxy quality of the run in ``directory``, also written there (``proxies.parquet``)."""
    run_dir = RunDir(directory)
    table = proxy_quality(run_dir.read_table(RunDir.HISTORY))
    run_dir.write_table(RunDir.PROXY_QUALITY, table)
    return table
