"""Every command of the command line, given a broken input, answers with one clear error naming it: a non-zero
exit status and no traceback. A new command must be added here (the test lists them from the CLI itself)."""

import json

import pytest

from conftest import glioseg_cli, glioseg_in_process
from glioseg.app.cli import app


def broken_nifti(folder):
    path = folder / "broken.nii.gz"
    path.write_bytes(b"\x1f\x8b\x08 not really gzip")
    return path


def broken_dicom(folder):
    study = folder / "study"
    study.mkdir()
    (study / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    return study


def broken_run(folder):
    run = folder / "run"
    run.mkdir()
    (run / "config.json").write_text("{not json")
    (run / "last.pt").write_bytes(b"PK\x03\x04 not a zip")
    return run


def broken_predictions(folder):
    predictions = folder / "predictions"
    predictions.mkdir()
    (predictions / "cases.json").write_text(json.dumps([{"case_id": "x"}]))
    (predictions / "metrics.csv").write_text("case_id,region\nx")
    return predictions


BROKEN = {  # command -> (its arguments given a scratch folder, the name its error must show)
    "synth": (lambda f: [broken_nifti(f), "--cases", "1"], "broken.nii.gz"),
    "check": (lambda f: [broken_nifti(f)], "broken.nii.gz"),
    "sample-data": (lambda f: [f / "sample", "--from", broken_dicom(f)], "study"),
    "train": (lambda f: [broken_nifti(f), "--out", f / "run"], "broken.nii.gz"),
    "pack": (lambda f: [broken_nifti(f), "--out", f / "data.pack"], "broken.nii.gz"),
    "predict": (lambda f: [broken_nifti(f), "--out", f / "pred"], "broken.nii.gz"),
    "prepare": (lambda f: [broken_dicom(f), "--out", f / "out"], "IM0001"),
    "series": (lambda f: [broken_dicom(f)], "IM0001"),
    "synth-followup": (lambda f: [broken_nifti(f), f / "later"], "broken.nii.gz"),
    "compare": (lambda f: [broken_nifti(f), broken_nifti(f), "--out", f / "change"], "broken.nii.gz"),
    "evaluate": (lambda f: [broken_predictions(f), broken_nifti(f), "--out", f / "m.csv"], "broken.nii.gz"),
    "export": (lambda f: [broken_run(f), "--out", f / "model.pt"], "last.pt"),
    "crossval": (lambda f: [broken_run(f), "--data", f, "--out", f / "cv"], "config.json"),
    "report": (lambda f: [broken_predictions(f), "--out", f / "report.html"], "metrics.csv"),
    "serve": (lambda f: [broken_run(f), "--port", "1"], "last.pt"),
    "listen": (lambda f: ["--run", broken_run(f), "--send-to", "PACS@127.0.0.1:4242", "--out", f / "node"], "last.pt"),
    "demo": (lambda f: ["--real", "--sample-dir", broken_nifti(f), "--out", f / "demo"], "broken.nii.gz"),
}


def test_every_command_is_in_the_catalogue():
    commands = {command.name or command.callback.__name__.replace("_", "-") for command in app.registered_commands}
    assert commands == set(BROKEN)


@pytest.mark.parametrize("command", sorted(BROKEN))
def test_every_command_answers_a_broken_input_without_a_traceback(command, tmp_path):
    arguments, named = BROKEN[command]
    if command in ("serve", "listen"):  # would block serving, were a refusal lost: in a process of its own, timed
        result = glioseg_cli(command, *arguments(tmp_path), timeout=300)
    else:
        result = glioseg_in_process(command, *arguments(tmp_path))
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, (result.returncode, text)
    assert "Traceback" not in text and named in text and "fix" in text.lower(), text
