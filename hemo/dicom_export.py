"""Results for PACS, as triage tools return them: Secondary Capture key slices and a Structured Report.

Both reference the source study's StudyInstanceUID (so a PACS files them beside it; PNG/JPEG, which have none,
get one derived from their pixels) and carry no identifying text: patient name, ID, birth date, accession
number and file names are not copied, whatever the input held.
"""

from __future__ import annotations

import hashlib
import io
import re

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from hemo.dicom import HEMO_MANUFACTURER
from hemo.report import key_slice_note, key_slices, study_notes
from hemo.study import Study

_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")
_HAEMORRHAGE = hd.sr.CodedConcept("50960005", "SCT", "Hemorrhage")
_PROBABILITY = hd.sr.CodedConcept("PROB", "99HEMO", "Probability of intracranial haemorrhage")
_VERDICT = hd.sr.CodedConcept("VERDICT", "99HEMO", "hemo study verdict")
_IN_CONTEXT = hd.sr.CodedConcept("PROBCTX", "99HEMO", "Highest probability of a slice read with its neighbours")
_CONTEXT = hd.sr.CodedConcept("CONTEXT", "99HEMO", "Slices read with their neighbours")
_KEY_SLICE = hd.sr.CodedConcept("KEYSLICE", "99HEMO", "Key slice")
_CONTAINS = hd.sr.RelationshipTypeValues.CONTAINS


def _study_uid(study: Study) -> str:
    """The source study's UID when the upload was DICOM. PNG/JPEG have none: one derived from the slices' pixels
    alone (never their names), so the key slices, the bleed maps, the report and any later export of the same
    images file into one study."""
    uid = study.key[0]
    if _UID.match(uid or "") and len(uid) <= 64:
        return uid
    pixels = hashlib.sha256()
    for result in study.slices:
        pixels.update(np.ascontiguousarray(result.slice.pixels).tobytes())
    return generate_uid(entropy_srcs=[pixels.hexdigest()])


def _captures(study: Study, pictures: list[tuple[int, np.ndarray, str]], series_number: int,
              description: str) -> list[hd.sc.SCImage]:
    """One RGB Secondary Capture per (slice number, picture, note), in a new series of the source study."""
    study_uid, series_uid = _study_uid(study), hd.UID()
    images = []
    for index, (number, picture, note) in enumerate(pictures, start=1):
        image = hd.sc.SCImage(
            pixel_array=np.ascontiguousarray(picture, np.uint8),
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB, bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT, study_instance_uid=study_uid,
            series_instance_uid=series_uid, series_number=series_number, sop_instance_uid=hd.UID(),
            instance_number=index, manufacturer=HEMO_MANUFACTURER, patient_orientation=("L", "P"))
        image.SeriesDescription = description
        image.ImageComments = f"slice {number} of {len(study.slices)}: {note}"
        images.append(image)
    return images


def secondary_captures(study: Study, opacity: float = 0.4) -> list[hd.sc.SCImage]:
    """One RGB Secondary Capture per key slice: the slice with its Grad-CAM x probability overlay."""
    return _captures(study, [(number, result.overlay(opacity), key_slice_note(study, number, result))
                             for number, result in key_slices(study)],
                     9901, "hemo key slices (Grad-CAM x probability)")


def bleed_captures(study: Study, opacity: float = 0.4) -> list[hd.sc.SCImage]:
    """With a bleed decoder: the same key slices with its bleed map (none for a model without one)."""
    return _captures(study, [(number, result.bleed_overlay(opacity), key_slice_note(study, number, result))
                             for number, result in key_slices(study) if result.bleed is not None],
                     9903, "hemo key slices (bleed map)")


def _number(name: hd.sr.CodedConcept, value: float) -> hd.sr.NumContentItem:
    return hd.sr.NumContentItem(name=name, value=round(float(value), 4), relationship_type=_CONTAINS,
                                unit=hd.sr.CodedConcept("1", "UCUM", "no units"))


def structured_report(study: Study, evidence: list[pydicom.Dataset], model_version: str) -> hd.sr.ComprehensiveSR:
    """The findings: verdict, probability, operating point and method, the notes the PDF gives beside the verdict
    (as comments), each key slice's numbers (alone, with its neighbours, its bleed map) and the neighbours' reading of
    the series, referencing the key-slice images.

    Why the per-slice numbers: a PACS shows the SR without hemo's curve, and the verdict alone does not say
    which slices carried it.
    """
    items = [
        hd.sr.CodeContentItem(name=codes.DCM.Finding, value=_HAEMORRHAGE, relationship_type=_CONTAINS),
        hd.sr.TextContentItem(name=_VERDICT, value=f"{study.verdict} ({study.method}, operating point "
                                                   f"{study.threshold:.3f}; model {model_version})"[:1024],
                              relationship_type=_CONTAINS),
        _number(_PROBABILITY, study.probability),
    ]
    if study.refined_threshold is not None:
        above = sum(p >= study.refined_threshold for p in study.refined)
        items += [_number(_IN_CONTEXT, max(study.refined)),
                  hd.sr.TextContentItem(name=_CONTEXT, value=f"{above} of {len(study.refined)} slices at or above "
                                        f"their operating point {study.refined_threshold:.3f}",
                                        relationship_type=_CONTAINS)]
    items += [hd.sr.TextContentItem(name=codes.DCM.Comment, value=note, relationship_type=_CONTAINS)
              for note in study_notes(study)]  # a tilt, a training slice: what a reader must weigh the verdict by
    for number, result in key_slices(study):
        items.append(hd.sr.TextContentItem(name=_KEY_SLICE, relationship_type=_CONTAINS,
                                           value=f"slice {number} of {len(study.slices)}: "
                                                 f"{key_slice_note(study, number, result)}"))
    for image in evidence:
        items.append(hd.sr.ImageContentItem(name=hd.sr.CodedConcept("121112", "DCM", "Source of Measurement"),
                                            referenced_sop_class_uid=image.SOPClassUID,
                                            referenced_sop_instance_uid=image.SOPInstanceUID,
                                            relationship_type=_CONTAINS))
    root = hd.sr.ContainerContentItem(name=hd.sr.CodedConcept("18748-4", "LN", "Diagnostic imaging report"),
                                      relationship_type=None)
    root.ContentSequence = hd.sr.ContentSequence(items)
    return hd.sr.ComprehensiveSR(evidence=evidence, content=root, series_instance_uid=hd.UID(), series_number=9902,
                                 sop_instance_uid=hd.UID(), instance_number=1, manufacturer=HEMO_MANUFACTURER)


def export(study: Study, model_version: str) -> dict[str, bytes]:
    """File name -> DICOM bytes: the key-slice Secondary Captures (and bleed maps) and the Structured Report."""
    images, maps = secondary_captures(study), bleed_captures(study)
    files = {}
    for index, image in enumerate(images, start=1):
        files[f"hemo-{study.slug}-key{index}.dcm"] = _bytes(image)
    for index, image in enumerate(maps, start=1):
        files[f"hemo-{study.slug}-bleed{index}.dcm"] = _bytes(image)
    images = images + maps
    files[f"hemo-{study.slug}-report.dcm"] = _bytes(structured_report(study, images, model_version))
    return files


def _bytes(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
