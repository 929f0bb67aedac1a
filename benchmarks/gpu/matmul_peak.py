"""The bf16 matrix-product rate this GPU reaches, beside the datasheet peak layerft's MFU divides by.

MFU in metrics.json is over the vendor's dense bf16 peak (`layerft.speed.DEVICE_PEAK_FLOPS`); no
program reaches that. This measures what a large square bf16 matmul reaches here, so a reported MFU
can also be read against what is reachable:

    python benchmarks/gpu/matmul_peak.py        # about 10 s on an H100
"""

from __future__ import annotations

import torch

from layerft.speed import device_peak_flops


def matmul_flops(size: int, repeats: int = 50) -> float:
    """FLOP/s of `repeats` back-to-back bf16 products of two size x size matrices (after a warm-up)."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    end.synchronize()
    return 2 * size**3 * repeats / (start.elapsed_time(end) / 1000)


def main() -> None:
    if not torch.cuda.is_available():
        print("matmul_peak: no CUDA device, nothing measured")
        return
    name = torch.cuda.get_device_name()
    peak = device_peak_flops(name)
    stated = f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown to layerft"
    print(f"{name}: datasheet dense bf16 peak {stated}")
    for size in (4096, 8192, 16384):
        flops = matmul_flops(size)
        share = f", {flops / peak:.1%} of the datasheet peak" if peak else ""
        print(f"bf16 matmul {size}^3: {flops / 1e12:.1f} TFLOP/s{share}")


if __name__ == "__main__":
    main()
