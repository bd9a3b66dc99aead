"""The measurements as a DICOM Structured Report (TID 1500 measurement report, highdicom's ``Comprehensive3DSR``),
written beside the DICOM SEG so that a PACS shows the numbers of ``volumes.csv`` and ``lesions.csv`` as numbers.

Measurement groups:

- one per tumour class present (edema, necrotic/non-enhancing core, enhancing tumour): a volumetric group (TID 1411)
  referencing that class's segment in the SEG and the T1Gd series it segments;
- the regions BraTS scores, whole tumour and tumour core (unions of those segments, which the SEG does not hold as
  segments of their own), and any class absent: a group (TID 1501) whose tracking identifier names what it measures;
- one per lesion of ``lesions.csv`` (whole-tumour and enhancing components): its volume and, on the axial slice where
  it is longest, RANO's longest and perpendicular diameters and their bidimensional product (which has no standard
  code: it is coded in glioseg's own scheme, :data:`LOCAL_SCHEME`).

- the review flag: whether a reader should check this segmentation (a qualitative evaluation, yes or no) and its
  score (:mod:`glioseg.inference.review`).

Every group names the algorithm (glioseg, its version, the model's fingerprint). A case without tumour gets a report
of zero volumes and no SEG reference (a SEG needs a segment with pixels).
"""

from __future__ import annotations

from pathlib import Path

from glioseg.core.files import atomic_path
from glioseg.core.labels import CLASS_NAMES
from glioseg.core.version import __version__
from glioseg.raw.dicom_seg import SEGMENTS

LOCAL_SCHEME = "99GLIOSEG"
"""glioseg's private coding scheme (PS3.16 8.2: a designator beginning with 99), for what standard codes lack."""
REGION_NAMES = {"WT": "Whole tumour (WT: edema, core and enhancing tumour)",
                "TC": "Tumour core (TC: necrotic/non-enhancing core and enhancing tumour)"}  # fmt: skip
REGION_TITLES = {"WT": "Whole tumour (WT)", "TC": "Tumour core (TC)", "ET": "Enhancing tumour (ET)"}
"""Each region BraTS scores, as the review group names one unreliable (:mod:`glioseg.inference.review`)."""
SERIES_DESCRIPTION = "glioseg tumour measurements (research use only)"
REVIEW_GROUP = "Segmentation quality (review flag)"


def _codes():
    """The codes the report uses (imported lazily: pydicom's code dictionary is large)."""
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    return {
        "volume": codes.SCT.Volume,
        "long": codes.SCT.LongAxis,
        "short": codes.SCT.ShortAxis,
        "product": Code("BDP", LOCAL_SCHEME, "Bidimensional product (RANO)"),
        "ml": Code("mL", "UCUM", "milliliter"),
        "mm": codes.UCUM.Millimeter,
        "mm2": codes.UCUM.SquareMillimeter,
        "tumour": codes.SCT.Neoplasm,
        "lesion": codes.SCT.Lesion,
        "procedure": Code("24590-2", "LN", "MR Brain"),
        "review score": Code("REVSCORE", LOCAL_SCHEME, "Review score (doubt about enhancing tumour)"),
        "review advised": Code("REVIEW", LOCAL_SCHEME, "Review advised"),
        "unreliable": Code("UNRELIABLE", LOCAL_SCHEME, "Unreliable region (segmented without a sequence)"),
        **{region: Code(region, LOCAL_SCHEME, REGION_TITLES[region]) for region in REGION_TITLES},
    }


def _algorithm(model_id: str):
    """glioseg, its version and the model's fingerprint, as every measurement group names them."""
    import highdicom as hd

    return hd.sr.AlgorithmIdentification(name="glioseg", version=__version__, parameters=[f"model {model_id}"])


def _measurement(name, value: float, unit, algorithm):
    import highdicom as hd

    return hd.sr.Measurement(name=name, value=float(value), unit=unit, algorithm_id=algorithm)


def _segment_numbers(seg) -> dict[int, int]:
    """Internal class -> its segment number in the SEG (matched by the segmented property type's code)."""
    by_code = {code: value for value, (_, _, code, _) in SEGMENTS.items()}
    return {by_code[item.SegmentedPropertyTypeCodeSequence[0].CodeValue]: int(item.SegmentNumber)
            for item in seg.SegmentSequence}  # fmt: skip


def _group(name: str, finding, measurements: list, algorithm, segment=None):
    """A measurement group: volumetric (TID 1411) when it has its segment, else image-level (TID 1501)."""
    import highdicom as hd

    tracking = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=name)
    if segment is not None:
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_segment=segment, finding_type=finding, algorithm_id=algorithm,
            measurements=measurements,
        )  # fmt: skip
    return hd.sr.MeasurementsAndQualitativeEvaluations(tracking_identifier=tracking, finding_type=finding,
                                                       algorithm_id=algorithm, measurements=measurements)  # fmt: skip


def measurement_groups(volumes: dict[str, float], lesions: list[dict], seg, t1gd_series: str, model_id: str) -> list:
    """The report's groups from a case's ``volumes.csv`` row (``<name>_ml``) and ``lesions.csv`` rows."""
    import highdicom as hd
    from pydicom.sr.coding import Code

    code = _codes()
    algorithm = _algorithm(model_id)
    numbers = _segment_numbers(seg) if seg is not None else {}
    groups = []
    for value, name in CLASS_NAMES.items():
        label, scheme, code_value, meaning = SEGMENTS[value]
        segment = None
        if value in numbers:
            segment = hd.sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=numbers[value],
                source_series=hd.sr.SourceSeriesForSegmentation(t1gd_series),
            )  # fmt: skip
        volume = _measurement(code["volume"], volumes[f"{name}_ml"], code["ml"], algorithm)
        groups.append(_group(label, Code(code_value, scheme, meaning), [volume], algorithm, segment))
    for region, name in REGION_NAMES.items():
        volume = _measurement(code["volume"], volumes[f"{region}_ml"], code["ml"], algorithm)
        groups.append(_group(name, code["tumour"], [volume], algorithm))
    for row in lesions:
        measured = [_measurement(code["volume"], row["volume_ml"], code["ml"], algorithm),
                    _measurement(code["long"], row["longest_diameter_mm"], code["mm"], algorithm),
                    _measurement(code["short"], row["perpendicular_diameter_mm"], code["mm"], algorithm),
                    _measurement(code["product"], row["product_mm2"], code["mm2"], algorithm)]  # fmt: skip
        groups.append(_group(f"{row['kind']} lesion {row['lesion']}", code["lesion"], measured, algorithm))
    return groups


def review_group(score: float, advised: bool, model_id: str, unreliable: tuple[str, ...] = ()):
    """The review flag (:mod:`glioseg.inference.review`) as a qualitative evaluation, with its score (no units), and
    each region unreliable because the case lacked a sequence as one more (its value names the region)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = _algorithm(model_id)
    code = _codes()
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=REVIEW_GROUP),
        finding_type=code["tumour"], algorithm_id=algorithm,
        measurements=[_measurement(code["review score"], score, codes.UCUM.NoUnits, algorithm)],
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(code["review advised"],
                                                             codes.SCT.Yes if advised else codes.SCT.No),
                                 *(hd.sr.QualitativeEvaluation(code["unreliable"], code[region])
                                   for region in unreliable)],
    )  # fmt: skip


def write_dicom_sr(path: Path, volumes: dict[str, float], lesions: list[dict], source_files: tuple[Path, ...],
                   seg_path: Path | None, model_id: str, review: tuple[float, bool] | None = None,
                   unreliable: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """Write the measurements of one case as a DICOM SR in the study of the T1Gd series ``source_files``,
    referencing the SEG ``seg_path`` (None: no tumour, no SEG). ``volumes``: the case's ``volumes.csv`` values by
    column; ``lesions``: its ``lesions.csv`` rows (numbers, not text); ``review``: its review score and whether a
    reader should check it (``quality.csv``), reported as a qualitative evaluation, with the ``unreliable`` regions
    (a sequence absent)."""
    import highdicom as hd
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sr.codedict import codes

    t1gd = [pydicom.dcmread(p, stop_before_pixels=True) for p in source_files]
    seg = pydicom.dcmread(seg_path) if seg_path is not None else None
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="glioseg", manufacturer_name="glioseg", model_name=f"glioseg 3D U-Net {model_id}"
        ),
    )  # fmt: skip
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=_codes()["procedure"],
        imaging_measurements=[*measurement_groups(volumes, lesions, seg, str(t1gd[0].SeriesInstanceUID), model_id),
                              *([review_group(*review, model_id, unreliable)] if review is not None else [])],
    )  # fmt: skip
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*t1gd, *([seg] if seg is not None else [])],
        content=report,
        series_instance_uid=hd.UID(),
        series_number=int(getattr(t1gd[0], "SeriesNumber", 0) or 0) + 2000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="glioseg",
        is_complete=True,
        series_description=SERIES_DESCRIPTION,
    )  # fmt: skip
    scheme = Dataset()  # the private scheme declared, as PS3.3 C.12.1.1.3.1 asks of a scheme not in PS3.16
    scheme.CodingSchemeDesignator, scheme.CodingSchemeName = LOCAL_SCHEME, "glioseg measurements"
    scheme.CodingSchemeResponsibleOrganization = "glioseg"
    sr.CodingSchemeIdentificationSequence = [*getattr(sr, "CodingSchemeIdentificationSequence", []), scheme]
    with atomic_path(path) as temporary:
        sr.save_as(temporary)
    return path
