"""Speed and peak memory of one training step: DenseSeg, HeatReg with 710 landmarks, and the bare UNet.

One step = forward, loss, backward and an Adam update, on synthetic data of the
item format (random image, one rectangle mask per structure with uv inside,
NaN outside, one landmark per structure's corner ring). The models share the
backbone widths given by --channels (the paper's 64-128-256-512, 2 residual
units, 64 features by default):
- unet: the bare MONAI UNet with one output channel per structure and the
  weighted BCE (a plain segmentation network: the reference cost);
- denseseg: ``DenseSegNet`` with the loss of eq. 4 (paper lambdas 0.13, 0.66,
  0.2, dense);
- heatreg710: ``HeatmapNet`` with 710 maps and the squared-L2 heatmap loss
  (alpha 44, sigma 8), by default in closed form from the features
  (``--heatmap-loss direct`` builds the 710 maps).

Each model runs in its own subprocess so its peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``, on the CPU the process's peak resident set
(``resource.getrusage``) minus the resident set before the model was built.
The first --warmup steps are not timed.

Closing JSON line: denseseg_img_per_s, heatreg710_img_per_s, unet_img_per_s,
denseseg_over_unet (DenseSeg's time per image / the UNet's), *_peak_mib, and
the settings (height, width, batch, channels, steps, device, heatmap_loss).
It also counts the multiply-accumulates of every convolution in one forward pass
(``conv_macs``, per image): ``denseseg_macs_over_unet`` is the ratio the
arithmetic alone sets, whatever the hardware does with it (the paper's heads are
four 64-channel 3x3 convolutions at full resolution, where the UNet's encoder
works at half resolution and below).
Run it small here, e.g. ``--height 64 --width 32 --batch 2 --steps 2 --channels 8 16 32``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from denseseg.losses.denseseg import DenseSegLossParams, denseseg_loss  # noqa: E402
from denseseg.losses.heatmap import HeatmapParams, heatmap_loss, heatmap_loss_from_features  # noqa: E402
from denseseg.losses.segmentation import bce_loss  # noqa: E402
from denseseg.nets.backbone import BackboneParams, build_backbone, count_parameters, size_divisor  # noqa: E402
from denseseg.nets.denseseg_net import DenseSegNet  # noqa: E402
from denseseg.nets.heatmap_net import HeatmapNet  # noqa: E402

MODELS = ("unet", "denseseg", "heatreg710")
N_HEATMAPS = 710
PAPER_LOSS = DenseSegLossParams(lambda_bce=0.13, lambda_phi=0.66, lambda_tv=0.2, dense=True, dice_weight=0.0)
PAPER_HEATMAP = HeatmapParams(alpha=44.0, sigma=8.0)


def synthetic_batch(batch: int, structures: int, landmarks: int, height: int, width: int, device) -> dict:
    """Item-format tensors with a rectangle per structure and landmarks on its border (seeded)."""
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(batch, structures, height, width)
    points = torch.zeros(batch, landmarks, 2)
    structure_of = torch.arange(landmarks) % structures
    for b in range(batch):
        for s in range(structures):
            y0 = int(torch.randint(0, height // 2, (1,), generator=g))
            x0 = int(torch.randint(0, width // 2, (1,), generator=g))
            masks[b, s, y0 : y0 + height // 3, x0 : x0 + width // 3] = 1
            own = torch.nonzero(structure_of == s).flatten()
            t = torch.linspace(0, 1, len(own) + 1)[:-1]
            points[b, own, 0] = x0 + t * (width // 3 - 1)
            points[b, own, 1] = y0
    uv = torch.rand(batch, structures, 2, height, width, generator=g)
    uv = torch.where(masks.unsqueeze(2) > 0, uv, torch.full_like(uv, float("nan")))
    return {
        "image": torch.rand(batch, 1, height, width, generator=g).to(device),
        "masks": masks.to(device),
        "uv": uv.to(device),
        "landmarks": points.to(device),
        "landmark_uv": torch.rand(landmarks, 2, generator=g).to(device),
        "landmark_structure": structure_of.to(device),
    }


def build(name: str, p: BackboneParams, structures: int, heatmap_loss_form: str, batch_size: int, shape, device):
    """(network, loss function of the network's input batch, data batch)."""
    height, width = shape
    if name == "unet":
        net = build_backbone(BackboneParams(channels=p.channels, num_res_units=p.num_res_units, features=structures))
        data = synthetic_batch(batch_size, structures, structures, height, width, device)
        weight = torch.full((structures,), 8.0, device=device)

        def loss(model, batch):
            return bce_loss(model(batch["image"]), batch["masks"], weight)

    elif name == "denseseg":
        net = DenseSegNet(p, structures)
        data = synthetic_batch(batch_size, structures, N_HEATMAPS, height, width, device)
        weight = torch.full((structures,), 8.0, device=device)

        def loss(model, batch):
            seg, uv = model(batch["image"])
            terms = denseseg_loss(seg, uv, batch, batch["landmark_uv"], batch["landmark_structure"], weight, PAPER_LOSS)
            return terms["loss"]

    else:
        net = HeatmapNet(p, N_HEATMAPS)
        data = synthetic_batch(batch_size, structures, N_HEATMAPS, height, width, device)

        def loss(model, batch):
            if heatmap_loss_form == "closed":
                features = model.features(batch["image"])
                return heatmap_loss_from_features(
                    features, model.head.weight, model.head.bias, batch["landmarks"], PAPER_HEATMAP
                )
            return heatmap_loss(model(batch["image"]), batch["landmarks"], PAPER_HEATMAP)

    return net.to(device), loss, data


def conv_macs(net: torch.nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of the 2-D (transposed) convolutions of one forward pass of a 1 x 1 x H x W image.

    A convolution costs (output pixels) x (output channels) x (input channels / groups) x (kernel area); a
    transposed one (input pixels) x (input channels) x (output channels / groups) x (kernel area).
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, torch.nn.ConvTranspose2d):
            x = inputs[0]
            total += x[0, 0].numel() * module.in_channels * module.out_channels // module.groups * kernel
        else:
            total += output[0].numel() * module.in_channels // module.groups * kernel

    hooks = [
        m.register_forward_hook(count)
        for m in net.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    ]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 1, height, width))
    finally:
        for hook in hooks:
            hook.remove()
        net.train()
    return total


def measure(args) -> dict:
    """Run one model's steps in this process; returns its figures."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    p = BackboneParams(channels=args.channels, num_res_units=args.res_units, features=args.features)
    net, loss_fn, data = build(
        args.only, p, args.structures, args.heatmap_loss, args.batch, (args.height, args.width), device
    )
    macs = conv_macs(net.cpu(), args.height, args.width)
    net = net.to(device)
    optimizer = torch.optim.Adam(net.parameters())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net, data)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    return {
        "model": args.only,
        "img_per_s": args.batch * args.steps / seconds,
        "s_per_step": seconds / args.steps,
        "peak_mib": peak_mib,
        "parameters": count_parameters(net),
        "conv_macs": macs,
        "loss": float(loss.detach()),
        "device": str(device),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--channels", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--res-units", type=int, default=2)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--structures", type=int, default=17)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--heatmap-loss", choices=("closed", "direct"), default="closed")
    parser.add_argument("--only", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    divisor = size_divisor(BackboneParams(channels=args.channels, num_res_units=args.res_units, features=args.features))
    if args.height % divisor or args.width % divisor:
        parser.error(f"--height and --width must be multiples of {divisor} for {len(args.channels)} levels")
    if args.only:
        print(json.dumps(measure(args)))
        return

    forwarded = list(argv if argv is not None else sys.argv[1:])
    results = {}
    for name in MODELS:
        out = subprocess.run(
            [sys.executable, __file__, *forwarded, "--only", name], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[name]
        print(
            f"{name:>11}: {r['img_per_s']:8.2f} images/s  {r['s_per_step']:7.3f} s/step  "
            f"peak {r['peak_mib']:9.1f} MiB  {r['parameters']:>10,} parameters  "
            f"{r['conv_macs'] / 1e9:7.2f} GMAC/image  ({r['device']})"
        )
    ratio = results["unet"]["img_per_s"] / results["denseseg"]["img_per_s"]
    mac_ratio = results["denseseg"]["conv_macs"] / results["unet"]["conv_macs"]
    print(f"DenseSeg takes {ratio:.2f}x the bare UNet's time per image; its convolutions {mac_ratio:.2f}x the MACs")
    summary = {f"{name}_img_per_s": round(results[name]["img_per_s"], 3) for name in ("denseseg", "heatreg710", "unet")}
    summary["denseseg_over_unet"] = round(ratio, 3)
    summary["denseseg_macs_over_unet"] = round(mac_ratio, 3)
    summary.update({f"{name}_conv_macs": results[name]["conv_macs"] for name in MODELS})
    summary.update({f"{name}_peak_mib": round(results[name]["peak_mib"], 1) for name in MODELS})
    summary.update(
        height=args.height,
        width=args.width,
        batch=args.batch,
        channels=args.channels,
        res_units=args.res_units,
        features=args.features,
        structures=args.structures,
        heatmaps=N_HEATMAPS,
        steps=args.steps,
        warmup=args.warmup,
        threads=args.threads,
        device=results["denseseg"]["device"],
        heatmap_loss=args.heatmap_loss,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
