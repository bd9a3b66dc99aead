"""glioseg: brain tumour segmentation in multimodal MRI with a 3D U-Net."""

from glioseg.errors import InputError
from glioseg.io import Case, read_case, write_label
from glioseg.layouts import CaseFiles, find_cases

__all__ = ["Case", "CaseFiles", "InputError", "find_cases", "read_case", "write_label"]
__version__ = "0.1.0"
