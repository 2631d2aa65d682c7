"""Pack all-MiniLM-L6-v2's weights small enough to travel: fp16, word embeddings int8, xz.

Run here (not on the GPU machine): pack_model.py SRC/model.safetensors OUT.xz
The word-embedding table is half the model; int8 with one scale per row keeps the
sentence vectors at cosine > 0.9999 (checked when the bundle was built).
"""

from __future__ import annotations

import lzma
import sys

import numpy as np
from safetensors.numpy import load_file, save

EMB = "embeddings.word_embeddings.weight"


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    tensors = load_file(source)
    packed: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        if name == EMB:
            scale = np.abs(value).max(axis=1, keepdims=True).astype(np.float32) / 127.0
            scale[scale == 0] = 1.0
            packed[name + ".q8"] = np.clip(np.rint(value / scale), -127, 127).astype(np.int8)
            packed[name + ".scale"] = scale
        elif np.issubdtype(value.dtype, np.floating):
            packed[name] = value.astype(np.float16)
        else:
            packed[name] = value
    data = save(packed, metadata={"format": "pt"})
    with lzma.open(target, "wb", preset=9 | lzma.PRESET_EXTREME) as handle:
        handle.write(data)


if __name__ == "__main__":
    main()
