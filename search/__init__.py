"""Ray Tune + Optuna + Ray Train search over adaptation methods, and the `adaptune` CLI."""
