"""Plain-torch domain adaptation: data, backbones, methods, the shared training loop and proxies.

Nothing in this package imports Ray, so every algorithm runs and is tested without it.
"""
