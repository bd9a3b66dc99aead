import numpy as np
import pytest

from glioseg.core.labels import (
    BRATS2021,
    BRATS2023,
    CORE,
    EDEMA,
    ENHANCING,
    MSD,
    RESECTION_CAVITY,
    LabelValueError,
    get_convention,
    label_from_regions,
    nnunet_convention,
    present_values,
    regions_from_label,
)

INTERNAL = np.array([0, EDEMA, CORE, ENHANCING, 0], dtype=np.uint8)


@pytest.mark.parametrize(
    "convention, file_values",
    [(MSD, [0, 1, 2, 3, 0]), (BRATS2021, [0, 2, 1, 4, 0]), (BRATS2023, [0, 2, 1, 3, 0])],
)
def test_conventions_round_trip(convention, file_values):
    encoded = convention.from_internal(INTERNAL)
    assert encoded.tolist() == file_values
    assert convention.to_internal(encoded).tolist() == INTERNAL.tolist()


def test_brats2021_label_3_is_refused_listing_values():
    with pytest.raises(LabelValueError, match=r"\[3\].*brats2021.*found \[0, 1, 3\]"):
        BRATS2021.to_internal(np.array([0, 1, 3]))


def test_msd_has_no_resection_cavity():
    assert BRATS2023.to_internal(np.array([4])).tolist() == [RESECTION_CAVITY]
    with pytest.raises(LabelValueError, match="no value in the msd convention"):
        MSD.from_internal(np.array([RESECTION_CAVITY], dtype=np.uint8))


def test_float_and_negative_labels_are_refused():
    with pytest.raises(LabelValueError, match="non-integer"):
        present_values(np.array([0.0, 1.5]))
    with pytest.raises(LabelValueError, match="negative"):
        present_values(np.array([0, -1]))
    assert present_values(np.array([[4.0, 0.0], [2.0, 2.0]])) == [0, 2, 4]


def test_unknown_convention_name():
    with pytest.raises(LabelValueError, match="unknown label convention"):
        get_convention("brats2019")


def test_nnunet_class_based_dataset_json():
    convention = nnunet_convention({"background": 0, "NCR": 1, "ED": 2, "ET": 3})
    assert convention.to_internal(np.array([0, 1, 2, 3])).tolist() == [0, CORE, EDEMA, ENHANCING]
    msd_names = nnunet_convention({"background": 0, "edema": 1, "non-enhancing tumor": 2, "enhancing tumour": 3})
    assert msd_names.file_to_internal == MSD.file_to_internal


def test_nnunet_region_based_dataset_json():
    # nnU-Net's Dataset137_BraTS2021 declares regions, not classes
    labels = {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": [3]}
    assert nnunet_convention(labels).file_to_internal == {0: 0, 1: EDEMA, 2: CORE, 3: ENHANCING}


def test_nnunet_unknown_name_is_refused():
    with pytest.raises(LabelValueError, match="'liver'"):
        nnunet_convention({"background": 0, "liver": 1})


def test_regions_are_nested_and_invert():
    regions = regions_from_label(INTERNAL)
    assert regions.shape == (3, 5)
    assert regions[0].tolist() == [False, True, True, True, False]  # WT
    assert regions[1].tolist() == [False, False, True, True, False]  # TC
    assert regions[2].tolist() == [False, False, False, True, False]  # ET
    assert label_from_regions(regions).tolist() == INTERNAL.tolist()


def test_enhancing_outside_core_still_counts_as_enhancing():
    regions = np.array([[True], [False], [True]])
    assert label_from_regions(regions).tolist() == [ENHANCING]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # the BraTS 2023 names: "non-enhancing" in SNFH must not make edema into core
        ({"background": 0, "non-enhancing tumor core": 1, "surrounding non-enhancing FLAIR hyperintensity": 2,
          "enhancing tumor": 3}, {1: CORE, 2: EDEMA, 3: ENHANCING}),
        ({"background": 0, "NETC": 1, "SNFH": 2, "ET": 3, "RC": 4},
         {1: CORE, 2: EDEMA, 3: ENHANCING, 4: RESECTION_CAVITY}),
        ({"background": 0, "Necrotic and Non-Enhancing Tumor Core (NCR/NET)": 1, "Peritumoral Edema (ED)": 2,
          "GD-enhancing tumor (ET)": 4}, {1: CORE, 2: EDEMA, 4: ENHANCING}),
        ({"background": 0, "peritumoural oedema": 3, "necrosis": 1, "enhancing tumour": 2},
         {3: EDEMA, 1: CORE, 2: ENHANCING}),
    ],
)  # fmt: skip
def test_dataset_json_names_are_matched_by_whole_phrase_or_acronym(labels, expected):
    assert nnunet_convention(labels).file_to_internal == {0: 0, **expected}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"background": 0, "edema": 1, "oedema": 2, "non-enhancing tumor": 3, "enhancing tumor": 4}, "both mean edema"),
        ({"background": 0, "edema": 1, "enhancing tumor": 2}, "no value for core"),
        ({"background": 0, "tumour": 1, "edema": 2, "enhancing": 3}, "'tumour'"),  # which compartment? never guessed
        ({"background": 0, "NCR/ED": 1, "core": 2, "enhancing": 3}, "names several"),
        ({"background": 1, "edema": 0, "core": 2, "enhancing": 3}, "background the value 0"),
        ({"background": 0, "whole tumor": [1, 2, 3], "enhancing tumor": [3]}, "region"),
    ],
)  # fmt: skip
def test_ambiguous_or_incomplete_label_names_are_refused(labels, message):
    with pytest.raises(LabelValueError, match=message):
        nnunet_convention(labels)


def test_the_config_names_the_conventions_labels_defines():
    from glioseg.core.config import LABEL_CONVENTIONS
    from glioseg.core.labels import CONVENTIONS

    assert set(LABEL_CONVENTIONS) == set(CONVENTIONS)
