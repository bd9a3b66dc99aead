"""Raw scans made BraTS-ready: DICOM studies, `glioseg prepare` and its record, DICOM SEG output."""
