"""What ``prepare`` agrees to read: regular files and folders inside the input folder.

A symbolic link whose target lies outside the input folder (a case file, a DICOM series
folder, a file inside one, or a whole site folder) is refused: the cache records every
input by its path inside the input folder and its hash, and a link out could reach files
the user never meant to hand over, or a device or FIFO that blocks the read forever.
Links that stay inside the input folder are followed; the input folder itself may be a
link. Anything that is not a regular file or folder (a FIFO, a device, a socket) is
refused too. Refused cases stop ``prepare`` like any invalid case, or are skipped and
listed with ``--skip-invalid``. Nothing is ever written through a link: ``prepare`` writes
only into its output folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from crossdistill.data.cases import CaseFiles
from crossdistill.errors import InputError


def check_contained(path: Path, root: Path) -> None:
    """Refuse ``path`` if it resolves outside ``root`` or is not a regular file or folder.

    A path that does not exist (a broken link inside ``root``) passes: the volume reader
    reports it.

    Raises:
        InputError: naming ``path``, its target and the reason.
    """
    try:
        target = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        raise InputError(path, "symbolic link loop; refused") from None
    root = root.resolve()
    if target != root and root not in target.parents:
        raise InputError(
            path,
            f"symbolic link leads outside the input folder (to {target}); refused: copy the "
            "file into the input folder or prepare the folder that holds it",
        )
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise InputError(path, "not a regular file (a FIFO, device or socket); refused")


def check_case_files(files: CaseFiles, root: Path) -> None:
    """:func:`check_contained` for the image and mask of a case, and for every entry of a
    DICOM series folder."""
    for path in (files.image, files.mask):
        if path is None:
            continue
        check_contained(path, root)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                check_contained(child, root)


def contained_cases(
    sites: dict[str, list[CaseFiles]], root: Path, refused: Callable[[InputError], None]
) -> dict[str, list[CaseFiles]]:
    """``sites`` without the cases that :func:`check_case_files` refuses; each refusal is
    passed to ``refused`` (which raises to stop, or records it to skip the case)."""
    kept: dict[str, list[CaseFiles]] = {}
    for site, files in sites.items():
        kept[site] = []
        for case in files:
            try:
                check_case_files(case, root)
            except InputError as err:
                refused(err)
                continue
            kept[site].append(case)
    return kept
