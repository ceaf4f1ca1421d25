"""GPU check (plain torch, no Ray): every deep method for a few hundred steps on CUDA with bf16 autocast.

Reports samples/s of each method's training steps next to a bare torch loop of the same model (LeNet +
bottleneck + head, cross-entropy on source only, same batch size, same autocast), and the target accuracy
reached on mnist->usps. Writes a Markdown table to --out.

  python -m benchmarks.gpu_check --out gpu.md [--steps 100 --epochs 3]

``--device cpu`` runs the same script on the CPU (autocast off, as the trial loop turns it off there): a dry run
that the tests use so the script works the first time a GPU machine is lent.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(task, steps: int, batch_size: int, device: torch.device) -> float:  # noqa: ANN001
    """Samples/s of plain supervised steps of the same network, data already on the device."""
    from adaptune.algorithms.backbones import build_backbone
    from adaptune.algorithms.loop import Classifier, bf16_autocast

    torch.manual_seed(0)
    backbone = build_backbone("lenet", task.input_shape)
    model = Classifier(backbone.blocks, backbone.out_features, task.num_classes, 256).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = task.source_train.x.to(device), task.source_train.y.to(device)
    generator = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        index = torch.randint(0, len(x), (batch_size,), device=device, generator=generator)
        with bf16_autocast(device):  # the trial loop's autocast, so the comparison is like for like
            _, logits = model(x[index])
            loss = F.cross_entropy(logits, y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(20):  # warm-up
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps * batch_size / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--methods", default="", help="comma-separated deep methods (default: every deep method)")
    args = parser.parse_args(argv)
    from adaptune.algorithms.data import load_task
    from adaptune.algorithms.loop import Runtime, TrialSpec, run_trial
    from adaptune.algorithms.methods import METHODS

    device = torch.device(args.device)
    task = load_task("mnist->usps")
    bare = bare_loop(task, args.steps * args.epochs, args.batch_size, device)
    rows = []
    # shallow / frozen-backbone methods have no deep training step to time
    deep = [name for name in sorted(METHODS) if not METHODS[name].feature_extraction]
    for name in args.methods.split(",") if args.methods else deep:
        history: list[dict] = []
        started = time.perf_counter()
        run_trial(task, TrialSpec(name, {}, "lenet", epochs=args.epochs, batch_size=args.batch_size,
                                  steps_per_epoch=args.steps, amp=True),
                  lambda metrics, state, sink=history: sink.append(metrics), runtime=Runtime(device=device))
        wall = time.perf_counter() - started
        speed = sum(h["samples_per_s"] for h in history[1:]) / max(1, len(history) - 1)  # epoch 1 = warm-up
        rows.append((name, speed, speed / bare, 100 * history[-1]["target_acc"], wall))
        print(rows[-1], flush=True)
    card = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run, no autocast)"
    lines = [
        "# GPU check: every deep method on CUDA, bf16 autocast\n",
        f"- command: `python -m benchmarks.gpu_check --steps {args.steps} --epochs {args.epochs}"
        + (" --device cpu`" if device.type == "cpu" else "`"),
        f"- card: {card}, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- task mnist->usps, LeNet + 256-d bottleneck, batch {args.batch_size} source (+ {args.batch_size} target "
        f"for methods that use it), {args.steps * args.epochs} steps; samples/s counts source samples per second "
        f"over epochs 2..{args.epochs}",
        f"- bare torch loop of the same model (source cross-entropy only, data on the device): "
        f"**{bare:,.0f} samples/s**\n",
        "| method | samples/s | vs bare loop | target acc % after "
        f"{args.steps * args.epochs} steps | wall s |",
        "|---|---|---|---|---|",
        *[f"| {n} | {s:,.0f} | {r:.2f}x | {a:.1f} | {w:.1f} |" for n, s, r, a, w in rows],
    ]
    with open(args.out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
