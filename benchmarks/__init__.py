"""adaptune's benchmarks: each module measures one claim the product makes and writes a page to results/.

Run them from the repository root, e.g. ``python -m benchmarks.skeleton``; every page starts with the command
that wrote it. ``benchmarks.papers`` holds reproductions of published protocols, kept apart from the product.
Nothing here is installed with adaptune.
"""
