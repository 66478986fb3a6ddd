#!/usr/bin/env python3
"""Fill the GPU with PyTorch tensors, leaving --leave bytes free, for the GPU
check's out-of-memory run (benchmarks/cmd/gpucheck). Prints one JSON line
once the memory is held, {"held": bytes, "free": bytes, "total": bytes},
then holds it until its stdin closes."""
import argparse
import json
import sys

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--leave", type=int, required=True, help="bytes to leave free")
    a = ap.parse_args()
    chunks = []
    chunk = 1 << 30
    while chunk >= 2 << 20:
        free, total = torch.cuda.mem_get_info()
        if free - chunk < a.leave:
            chunk //= 2
            continue
        chunks.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
    torch.cuda.synchronize()
    free, total = torch.cuda.mem_get_info()
    print(json.dumps({"held": sum(c.numel() for c in chunks), "free": free, "total": total}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
