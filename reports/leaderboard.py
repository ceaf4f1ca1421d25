"""The leaderboard: its columns and their types, ranking the trials, and printing it.

``leaderboard.parquet`` has one row per trial; where it lives, and how it is written and read back, is
:mod:`.run_dir`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from adaptune.algorithms.hparams import SEARCH_SPACE_KNOBS

from .run_dir import RunError
from .values import finite

PREPROCESS_COLUMN = "preprocess"  # each trial's feature preprocessing; also the searched key where it is drawn
# Column -> Arrow type, in display order. Hyperparameter and proxy_<name> columns are added per run.
LEADERBOARD_COLUMNS: dict[str, pa.DataType] = {
    "trial_id": pa.string(),
    "status": pa.string(),  # completed | stopped (early, by the scheduler) | error | diverged | ensemble
    "method": pa.string(),
    "freeze_depth": pa.int64(),
    "lr": pa.float64(),
    "adv_weight": pa.float64(),
    "proxy": pa.string(),
    "score": pa.float64(),
    "rank": pa.int64(),
    "target_acc": pa.float64(),
    "source_acc": pa.float64(),
    "best_epoch": pa.int64(),
    "epochs": pa.int64(),
    "steps": pa.int64(),  # optimizer steps trained (L-BFGS iterations for a closed-form head)
    "wall_s": pa.float64(),
    "node_ip": pa.string(),
    "node_id": pa.string(),
    "seed": pa.int64(),
    PREPROCESS_COLUMN: pa.string(),
    "config_hash": pa.string(),
    "versions": pa.string(),
    "started_at": pa.float64(),
    "ended_at": pa.float64(),
    "error": pa.string(),
    "members": pa.string(),  # the ensemble row's member trial ids (status "ensemble")
}
FINISHED = ("completed", "stopped")
SHARED_KNOBS = tuple(p.name for p in SEARCH_SPACE_KNOBS)  # the knob columns every leaderboard has


def selection_order(rows: list[dict[str, Any]], source_gap: float | None = None
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows with a finite score in the order a search recommends them: (admitted, held back), each best score
    first.

    A trial is held back when its held-out source accuracy lies more than ``source_gap`` below the best trial's
    on the same input (the same ``preprocess``): it has lost what it knew of the task, however well the proxy rates
    its target predictions. The floor is per preprocessing because a preprocessing changes how well the source can
    be fitted at all: one kind's better fit of a small source split must not hold back every trial of the other.
    Without a gap every trial is admitted. Only admitted trials are recommended or join the ensemble row.
    """
    scored = sorted((r for r in rows if finite(r.get("score"))), key=lambda r: -r["score"])
    if source_gap is None:
        return scored, []
    best: dict[Any, float] = {}
    for row in scored:
        if finite(row.get("source_acc")):
            kind = row.get(PREPROCESS_COLUMN)
            best[kind] = max(best.get(kind, row["source_acc"]), row["source_acc"])
    if not best:
        return scored, []
    within = [finite(r.get("source_acc")) and r["source_acc"] >= best[r.get(PREPROCESS_COLUMN)] - source_gap
              for r in scored]
    return [r for r, ok in zip(scored, within) if ok], [r for r, ok in zip(scored, within) if not ok]


def at_most_per_method(rows: Iterable[dict[str, Any]], per_method: int | None) -> Iterator[dict[str, Any]]:
    """``rows`` in their order, without those beyond the first ``per_method`` of their method (None: every row).

    The ensemble row's members: a search's TPE spends its trials on the method its proxy scores highest, so
    without a cap one over-rated method can fill the whole ensemble."""
    seen: Counter[Any] = Counter()
    for row in rows:
        seen[row.get("method")] += 1
        if per_method is None or seen[row.get("method")] <= per_method:
            yield row


def rank_rows(rows: list[dict[str, Any]], source_gap: float | None = None) -> None:
    """Set ``rank`` (1 = best) on finished rows with a finite score, in :func:`selection_order`; others get None."""
    admitted, held_back = selection_order([r for r in rows if r["status"] in FINISHED], source_gap)
    for row in rows:
        row["rank"] = None
    for position, row in enumerate(admitted + held_back, start=1):
        row["rank"] = position


def leaderboard_frame(rows: list[dict[str, Any]], param_names: list[str], proxy_names: list[str]) -> pd.DataFrame:
    """Rows -> a DataFrame with the fixed columns, then one column per hyperparameter and per proxy."""
    columns = list(LEADERBOARD_COLUMNS)
    extra = [p for p in param_names if p not in columns] + [f"proxy_{p}" for p in proxy_names]
    frame = pd.DataFrame([{c: row.get(c) for c in columns + extra} for row in rows], columns=columns + extra)
    for name, dtype in LEADERBOARD_COLUMNS.items():
        if pa.types.is_integer(dtype):
            frame[name] = frame[name].astype("Int64")
        elif pa.types.is_floating(dtype):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        else:
            frame[name] = frame[name].astype("string")
    for name in extra:
        if name.startswith("proxy_"):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame.sort_values("rank", na_position="last", kind="stable").reset_index(drop=True)


def preprocess_searched(df: pd.DataFrame) -> bool:
    """Whether the trials differ in their feature preprocessing (a search given several draws it per trial)."""
    if PREPROCESS_COLUMN not in df.columns:
        return False
    return df.loc[df["status"] != "ensemble", PREPROCESS_COLUMN].dropna().nunique() > 1


def hyperparameter_columns(df: pd.DataFrame) -> list[str]:
    """The leaderboard's knob columns: the shared ones, then each method's own (added per run); ``preprocess``
    first where the search drew it per trial."""
    shared = [c for c in SHARED_KNOBS if c in df.columns]
    own = [c for c in df.columns if c not in LEADERBOARD_COLUMNS and not c.startswith("proxy_")]
    return [PREPROCESS_COLUMN] * preprocess_searched(df) + shared + own


def _knobs(row: pd.Series, columns: list[str]) -> str:
    return " ".join(f"{c}={row[c]:.3g}" if isinstance(row[c], float) else f"{c}={row[c]}"
                    for c in columns if not pd.isna(row[c]))


def _whole(value: Any) -> str:
    return "-" if pd.isna(value) else str(int(value))


def compact_table(df: pd.DataFrame, top: int = 10) -> str:
    """The best ``top`` trials in a terminal's width: rank, method, the knobs it was trained with, the proxy
    score, its best epoch and, when the target is labeled, the oracle accuracy (reporting only)."""
    if df.empty:
        return "(no finished trials yet)"
    # Runs written before a column existed read back without it.
    df = df.reindex(columns=[*df.columns, *(c for c in LEADERBOARD_COLUMNS if c not in df.columns)])
    df = df.sort_values("rank", na_position="last", kind="stable")
    proxy = df["proxy"].dropna().iloc[0] if df["proxy"].notna().any() else "score"
    columns = hyperparameter_columns(df)
    table = pd.DataFrame({
        "rank": df["rank"].map(_whole),
        "method": [f"ensemble of {len(str(m).split(','))}" if s == "ensemble" else method
                   for method, s, m in zip(df["method"], df["status"], df["members"])],
        "hyperparameters": [_knobs(row, columns) for _, row in df.iterrows()],
        proxy: df["score"].map(lambda v: "-" if pd.isna(v) else f"{v:.4g}"),
        "epoch": df["best_epoch"].map(_whole),
    })
    if df["target_acc"].notna().any():
        table["oracle"] = df["target_acc"].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
    ranked = df["status"] != "ensemble"
    shown = pd.concat([table[ranked].head(top), table[~ranked]])
    return shown.to_string(index=False, max_colwidth=80)


def format_table(df: pd.DataFrame, top: int | None, by: str | None, fmt: str) -> str:
    """The leaderboard as a text table, CSV or JSON (records), best first by ``rank`` or ``by`` (descending)."""
    if by is not None:
        if by not in df.columns:
            raise RunError(f"by: unknown column {by!r}; expected one of: {', '.join(df.columns)}")
        df = df.sort_values(by, ascending=by in ("rank", "trial_id"), na_position="last", kind="stable")
    if top is not None:
        df = df.head(top)
    if fmt == "table" and df.empty:
        return "(no finished trials yet)"
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=2)
    shown = [c for c in df.columns if c not in ("versions", "config_hash", "node_id", "started_at", "ended_at",
                                                "error", "members") and not df[c].isna().all()]
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.float_format",
                           "{:.4g}".format):
        return df[shown].to_string(index=False)
