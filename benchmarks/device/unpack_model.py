"""Rebuild model.safetensors (fp16) from pack_model.py's output: unpack_model.py IN.xz OUT."""

from __future__ import annotations

import lzma
import sys

import numpy as np
from safetensors.numpy import load, save_file

EMB = "embeddings.word_embeddings.weight"


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    with lzma.open(source, "rb") as handle:
        packed = load(handle.read())
    tensors: dict[str, np.ndarray] = {}
    for name, value in packed.items():
        if name == EMB + ".q8":
            tensors[EMB] = (value.astype(np.float32) * packed[EMB + ".scale"]).astype(np.float16)
        elif name != EMB + ".scale":
            tensors[name] = value
    save_file(tensors, target, metadata={"format": "pt"})


if __name__ == "__main__":
    main()
