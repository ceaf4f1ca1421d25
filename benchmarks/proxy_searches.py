"""The auto proxy on whole default searches: the same tasks and seeds searched with each candidate rule.

A pool of one trial per method (benchmarks/proxies_report.py) ranks five families in its top 5; a whole search
spends its trials on the family its proxy scores highest. This page reads the committed pages of
``python -m benchmarks.skeleton --tasks ... --proxy P [--seed S]`` runs and sets the rules side by side: the
recommended ensemble's target accuracy, the search's own oracle-best trial, and the no-adaptation baselines.

  python -m benchmarks.proxy_searches      # writes benchmarks/results/proxy_searches.md
"""

from __future__ import annotations

from benchmarks._common import against_best, header, md_table, page_table, write

# Per selection rule (features / images), per seed: the skeleton pages of its default searches.
RUNS = {
    "`im_ts` / `bnm_ts`": {0: ("search_budget_im_ts.md", "search_budget_pixels_im_ts.md", "search_images_bnm_ts.md"),
                           1: ("search_seed1_im_ts.md",)},
    "`im` / `bnm`": {0: ("search_budget_uncapped.md", "search_budget_pixels_uncapped.md",
                          "search_images_bnm_uncapped.md"),
                     1: ("search_seed1_uncapped.md",)},
}


def searches() -> dict[str, dict[tuple[str, int], dict[str, float]]]:
    """Per rule, per (task, seed): recommended, best trial and baseline accuracy (%) from the pages' rows."""
    found: dict[str, dict[tuple[str, int], dict[str, float]]] = {}
    for rule, seeds in RUNS.items():
        for seed, pages in seeds.items():
            for page in pages:
                for row in page_table(page):
                    found.setdefault(rule, {})[(row["task"], seed)] = {
                        "recommended": float(row["recommended"]), "best": float(row["best trial (oracle)"]),
                        "baseline": max(float(row["LR"]), float(row["1-NN"]))}
    return found


def summary(found: dict[str, dict[tuple[str, int], dict[str, float]]], runs: list[tuple[str, int]]) -> list[list]:
    """Per rule over ``runs``: mean recommended accuracy, mean and worst loss against the search's own best trial,
    and the searches whose recommendation beats both baselines."""
    rows = []
    for rule, results in found.items():
        chosen = [(results[run]["recommended"], results[run]["best"], results[run]["baseline"]) for run in runs]
        mean, loss, worst, above = against_best(chosen)
        rows.append([rule, mean, loss, chosen[worst][1] - chosen[worst][0], f"{above} of {len(chosen)}"])
    return rows


def main() -> None:
    found = searches()
    rules = list(found)
    runs = [run for run in dict.fromkeys(run for results in found.values() for run in results)
            if all(run in results for results in found.values())]
    rows = [[task, seed, *[found[rule][(task, seed)][key] for rule in rules for key in ("recommended", "best")],
             found[rules[0]][(task, seed)]["baseline"]] for task, seed in runs]
    columns = [f"{rule} {what}" for rule in rules for what in ("recommended", "best trial")]
    table = summary(found, runs)
    best = min(table, key=lambda row: (row[2], -row[1]))
    pages = sorted({page for seeds in RUNS.values() for pages in seeds.values() for page in pages})
    text = "\n".join([
        header("The auto proxy on whole default searches", "python -m benchmarks.proxy_searches"),
        "\nEach row is one default search (`adaptune search --task T`, TPE + ASHA at the default budget) per rule: "
        "`auto` resolved to the first proxy for feature tables and the second for images "
        f"(`benchmarks.skeleton --tasks ... --proxy P [--seed S]`; pages: {', '.join(pages)}). *recommended*: "
        "the target accuracy (%) of what the search recommends (the top-5 ensemble within the source gap); *best "
        "trial*: the search's oracle-best trial (reporting only); *baseline*: the better of source-only LR and "
        "1-NN on the same features (baselines.md). The proxy steers TPE as well as the ranking, so the two rules' "
        "searches train different trials.\n",
        md_table(rows, ["task", "seed", *columns, "baseline"]),
        "\n## Summary\n",
        md_table(table, ["rule", "mean recommended (%)", "mean loss against the best trial (points)",
                         "worst loss (points)", "beats both baselines"]),
        "\n## What follows\n",
        f"- {best[0]} loses least against the searches' own best trials: {best[2]:.1f} points on average, at most "
        f"{best[3]:.1f}, over {len(runs)} searches of {len({task for task, _ in runs})} tasks.",
        "- Where a rule's proxy over-rates one family, TPE spends the search on it and the whole top 5 is that "
        "family: the single failures of the worst-loss column, which a pool of one trial per method cannot show "
        "(proxies.md derives the rule on pools and screens out proxies whose single pick fails there).",
        "- One or two seeds per task: a difference of a few points on one task is within the noise of one search.",
        "",
    ])
    print(write("proxy_searches.md", text))


if __name__ == "__main__":
    main()
