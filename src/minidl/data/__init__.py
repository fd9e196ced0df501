"""minidl.data: built-in data sets, CSV files, splits, standardisation and the batch iterator."""

from minidl.data.csv import CsvData, load_csv, read_table
from minidl.data.datasets import DATASETS, DISK_RADIUS, blobs, circles, disk, moons, spirals, xor
from minidl.data.digits import digits
from minidl.data.loader import DataLoader
from minidl.data.source import DataBundle, load_data
from minidl.data.split import split_indices
from minidl.data.standardize import Standardizer

__all__ = [
    "DATASETS",
    "DISK_RADIUS",
    "CsvData",
    "DataBundle",
    "DataLoader",
    "Standardizer",
    "blobs",
    "circles",
    "digits",
    "disk",
    "load_csv",
    "load_data",
    "moons",
    "read_table",
    "spirals",
    "split_indices",
    "xor",
]
