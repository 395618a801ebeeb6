"""OpenPose's per-frame JSON output: import into a dump, and export a dump back to it.

OpenPose (``--write_json DIR``) writes one ``<name>_<frame:012d>_keypoints.json``
per frame, holding ``{"version": 1.3, "people": [...]}``; each person has flat
``[x0, y0, c0, x1, ...]`` lists ``pose_keypoints_2d``, ``hand_left_keypoints_2d``,
``hand_right_keypoints_2d`` and ``face_keypoints_2d`` (empty when that detector
was off) and ``person_id`` (``[-1]`` unless OpenPose ran with ``--tracking``).

**Mapping.** A pose of mode ``M`` stacks the parts :data:`PARTS` lists for ``M``,
in that order (pose, left hand, right hand, face), then pads with absent
keypoints (0, 0, 0) to ``LIMBS[M]``:

| mode | parts (keypoints) | stacked | limbs |
| --- | --- | --- | --- |
| BODY_25 | pose (25) | 25 | 25 |
| BODY_25_HANDS | pose (25), left hand (21), right hand (21) | 67 | 67 |
| BODY_25_FACE | pose (25), face (70) | 95 | 96 |
| BODY_25_ALL | pose (25), left hand (21), right hand (21), face (70) | 137 | 138 |
| BODY_135 | pose (135) | 135 | 138 |
| FACE | face (70) | 70 | 70 |

An empty part list reads as absent keypoints. Keypoints with confidence 0 are not
stored (the dump's rule), so they come back as ``0, 0, 0``.

**Import** (:func:`import_openpose`) reads a directory or a ``.zip`` (local or any
fsspec URL) and writes, streaming frame by frame in bounded memory:

* by default an ``unseg`` dump whose pose id is the person's position in
  ``people`` (a detection slot, as skelshop's own import);
* with ``tracked=True`` a ``trackshots`` dump of one shot whose pose id is
  OpenPose's ``person_id`` (written by ``--tracking``); a person without one
  (``-1``) or two people with the same id in a frame are errors.

The timeline runs from the first file's frame number to the last; ``num_frames``
is the last frame + 1. A frame number missing in between (OpenPose writes a file
for every frame, even an empty one, so a gap is a lost file) raises
:class:`~skelstore.errors.MissingFramesError`, or with ``missing="empty"`` is
imported as a frame without people (their number is kept in the root attribute
``openpose_missing_frames``). Files not named ``*_keypoints.json`` are ignored.

**Export** (:func:`export_openpose`) writes one file per frame of the timeline (a
directory, or a ``.zip``), named after the dump's ``video`` attribute: people of
an ``unseg`` dump in pose id order with ``person_id`` ``[-1]``; people of a
``trackshots`` dump in pose id order with ``person_id`` ``[pose id]``. Parts of
the mode get full lists, the others ``[]``; numbers are the shortest decimal that
reads back as the same float32. A dump storing a keypoint beyond the mode's parts
(the padding rows of the table above, e.g. BODY_25_ALL's keypoint 137) is refused
before anything is written: OpenPose's lists cannot hold it. Importing an export
gives the same dump, and exporting an import gives the same files as far as a dump
can hold them: trailing
people with no keypoint at all (unseg) or people with no keypoint (tracked) are
not kept, nor x/y of keypoints with confidence 0, nor an empty part list of a
mode's part (it comes back as zeros).
"""

from __future__ import annotations

from skelstore.openpose.exporter import (
    MAX_EXPORT_FRAMES,
    ExportReport,
    export_openpose,
)
from skelstore.openpose.frames import (
    PARTS,
    OpenPoseFrames,
    parse_people,
)
from skelstore.openpose.importer import ImportReport, import_openpose

__all__ = [
    "MAX_EXPORT_FRAMES",
    "PARTS",
    "ExportReport",
    "ImportReport",
    "OpenPoseFrames",
    "export_openpose",
    "import_openpose",
    "parse_people",
]
