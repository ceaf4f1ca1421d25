"""An order for the defaults a search runs first: the methods its recommendation holds most often first.

A default search trains every method once at its defaults before its sampler proposes trials of its own, and at the
default budget that first phase takes most of the compute (search_efficiency.md). Methods whose defaults a search
ends up recommending are worth running first: a search stopped early already holds them, and ASHA's rungs are set
by good trials sooner. This page counts, over the suite's whole default searches re-ranked as a search ranks them
(raw/checkpoint-proxy-reranked.jsonl, the shipped ranking rule), how often each method is in the recommended
ensemble, per benchmark group; the order is by the mean share over the groups (every group weighs the same), ties in
name order. The recommendation is chosen by the proxy, so the order reads no target label. The order derived with
each group left out is the one search_efficiency.py's ``tpe+asha (defaults in derived order)`` runs on that group's
tasks, beside the default search, which runs the defaults in name order.

  python -m benchmarks.defaults_order     # defaults_order.md
"""

from __future__ import annotations

import pandas as pd

from adaptune.algorithms.methods import METHODS
from benchmarks._common import header, md_table, read_jsonl, write
from benchmarks.checkpoint_proxy import RERANKED as SEARCHES
from benchmarks.checkpoint_proxy import SPLIT as SHIPPED_RULE  # the ranking a default search on feature tables ships


def shipped_searches(path: str = SEARCHES) -> list[dict]:
    """The re-ranked whole default searches, each as the shipped ranking recommends it."""
    return [r for r in read_jsonl(path) if r["rule"] == SHIPPED_RULE]


def recommended_shares(searches: list[dict]) -> pd.DataFrame:
    """Per method (rows) and benchmark group (columns): the share of the group's default ``searches`` whose
    recommended ensemble holds the method."""
    rows = [{"group": s["group"], "method": method, "in": method in s["members"].split(",")}
            for s in searches for method in METHODS]
    return pd.DataFrame(rows).groupby(["method", "group"])["in"].mean().unstack().reindex(sorted(METHODS))


def order(shares: pd.DataFrame, without: str | None = None) -> list[str]:
    """Methods by their mean share over the groups (``without`` one left out), most often recommended first."""
    mean = shares.drop(columns=[without] if without else []).mean(axis=1)
    return sorted(shares.index, key=lambda method: (-mean[method], method))


def held_out_order(group: str, path: str = SEARCHES) -> list[str]:
    """The order derived on every group but ``group``: what a benchmark of ``group``'s tasks runs."""
    shares = recommended_shares(shipped_searches(path))
    return order(shares, without=group if group in shares.columns else None)


def held_out_agreement(shares: pd.DataFrame) -> dict[str, float]:
    """Per group: Spearman's rank correlation of the order derived without it with the order of every group."""
    whole = pd.Series(range(len(shares)), index=order(shares))
    return {group: pd.Series(range(len(shares)), index=order(shares, without=group)).corr(whole, method="spearman")
            for group in shares.columns}


def report(shares: pd.DataFrame, counts: pd.Series) -> str:
    derived = order(shares)
    text = header("An order for the defaults a search runs first", "python -m benchmarks.defaults_order")
    text += ("\nA default search trains each method once at its defaults before TPE proposes trials of its own; at "
             "the default budget that phase takes most of the compute (search_efficiency.md), so its order decides "
             "what a search stopped early holds. Share: of a benchmark group's whole default searches "
             f"({', '.join(f'{g} {n}' for g, n in counts.items())}; re-ranked as a search ranks them, "
             "`raw/checkpoint-proxy-reranked.jsonl`), the fraction whose recommended ensemble holds the method. "
             "The recommendation is the proxy's choice: no target label enters the order. The searches are of "
             "feature tables.\n\n")
    rows = [[method, *[f"{shares.loc[method, g]:.2f}" for g in shares.columns], f"{shares.loc[method].mean():.2f}",
             derived.index(method) + 1] for method in derived]
    text += md_table(rows, ["method", *shares.columns, "mean over groups", "position"])
    text += ("\n\nLeave one group out: the order derived on the other groups, which search_efficiency.py runs on "
             "the held-out group's tasks (first ten methods; rank correlation with the order derived on every "
             "group).\n\n")
    agreement = held_out_agreement(shares)
    held = [[group, ", ".join(order(shares, without=group)[:10]), f"{rho:.2f}"] for group, rho in agreement.items()]
    text += md_table(held, ["held-out group", "order derived on the others", "Spearman with the order of every group"])
    text += ("\n\n## What follows\n\n"
             f"- The derived order: {', '.join(derived)}.\n"
             f"- Each group left out, the order's rank correlation with the one derived on every group is "
             f"{min(agreement.values()):.2f} to {max(agreement.values()):.2f}: it does not hinge on one group. "
             "Whether it earns compute is measured in search_efficiency.md (`tpe+asha (defaults in derived order)`), "
             "where each group's tasks run the order derived without it. A default search runs the defaults in name "
             "order, and a `methods` list in its own order.\n")
    return text


def main() -> None:
    searches = shipped_searches()
    shares = recommended_shares(searches)
    counts = pd.Series([r["group"] for r in searches]).value_counts()
    print(write("defaults_order.md", report(shares, counts.reindex(shares.columns))))


if __name__ == "__main__":
    main()
