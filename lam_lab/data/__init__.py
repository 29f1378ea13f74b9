"""Data layer: frames, datasets with provenance, readers/writers, validation, splits."""

from lam_lab.data.dataset import Dataset, LabelProvenance, Provenance, Summary
from lam_lab.data.errors import DataError, ValidationError
from lam_lab.data.frame import Frame, Labels
from lam_lab.data.io import FORMATS, read, write

__all__ = [
    "Dataset", "Frame", "Labels", "Provenance", "LabelProvenance", "Summary",
    "DataError", "ValidationError", "read", "write", "FORMATS",
]
