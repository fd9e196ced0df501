"""The 8×8 handwritten digits shipped with scikit-learn (1,797 images, 10 classes), scaled to [0, 1]."""

from __future__ import annotations

import torch

from minidl.errors import DataError

INSTALL_HINT = "pip install -c constraints.txt -e '.[datasets]' (in the minidl checkout)"


def digits(*, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` of shape (1797, 64) with pixel values / 16 in [0, 1], and integer labels 0..9.

    Needs scikit-learn (the optional ``datasets`` extra); it reads the copy bundled with scikit-learn,
    so nothing is downloaded.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(f"the digits data set needs scikit-learn: {INSTALL_HINT}") from None
    bunch = load_digits()
    x = torch.tensor(bunch.data.tolist(), dtype=torch.float64) / 16
    labels = torch.tensor(bunch.target.tolist(), dtype=torch.long)
    return x.to(dtype), labels


DIGITS_FEATURES = [f"pixel_{row}_{col}" for row in range(8) for col in range(8)]
