"""minidl.data: built-in data sets and the batch iterator."""

from minidl.data.datasets import DISK_RADIUS, disk
from minidl.data.loader import DataLoader
from minidl.data.standardize import Standardizer

# name -> generator(n, seed=..., dtype=...) returning (x, labels)
DATASETS = {"disk": disk}

__all__ = ["DATASETS", "DISK_RADIUS", "DataLoader", "Standardizer", "disk"]
