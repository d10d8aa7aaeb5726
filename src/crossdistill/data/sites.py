"""Site names: the paper's labels, the hospitals and the release's folder names.

Wherever a site is named (command line, config, reports) any of the three spellings is
accepted, case-insensitively. Sites beyond the six of the paper are named by their folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crossdistill.errors import CrossDistillError


@dataclass(frozen=True)
class Site:
    """One acquisition site of the multi-site prostate release."""

    label: str  # the paper's name, "S1" ... "S6"
    name: str  # the hospital, "RUNMC"
    folder: str  # the folder in the release, "ISBI"
    source: str  # the public challenge the cases come from
    cases: int  # number of cases in the real release


PAPER_SITES: tuple[Site, ...] = (
    Site("S1", "RUNMC", "ISBI", "NCI-ISBI 2013", 30),
    Site("S2", "BMC", "ISBI_1.5", "NCI-ISBI 2013", 30),
    Site("S3", "HCRUDB", "I2CVB", "I2CVB", 19),
    Site("S4", "UCL", "UCL", "PROMISE12", 13),
    Site("S5", "BIDMC", "BIDMC", "PROMISE12", 12),
    Site("S6", "HK", "HK", "PROMISE12", 12),
)
PAPER_FOLDERS: tuple[str, ...] = tuple(s.folder for s in PAPER_SITES)


def site_info(folder: str) -> Site:
    """The :class:`Site` for a folder; a folder outside the paper's six gets a plain entry."""
    for site in PAPER_SITES:
        if site.folder == folder:
            return site
    return Site(folder, folder, folder, "user data", 0)


def site_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a site, or ``None`` when it can.

    A site is named by its folder in the release layout, so a site named elsewhere (a site
    map of the nnU-Net or Decathlon layout) must be a name such a folder could have: not
    empty, not hidden (``.x``), no path separator or control character, no comma (``--sites``
    separates names with commas), at most 255 bytes. Any other name is accepted and, beyond
    the paper's six folders, names a plain site (:func:`site_info`).
    """
    if not name or name in (".", ".."):
        return "a site name may not be empty, '.' or '..'"
    if name.startswith("."):
        return "a site name may not start with '.' (a hidden folder in the release layout)"
    bad = next((c for c in name if c in "/\\," or not c.isprintable()), None)
    if bad is not None:
        return f"a site name may not contain {bad!r} (separators, commas, control characters)"
    if len(name.encode()) > 255:
        return "a site name may be at most 255 bytes (a folder name)"
    return None


def display_name(folder: str) -> str:
    """``"S4 UCL"`` for a paper site, the folder name otherwise."""
    site = site_info(folder)
    return f"{site.label} {site.name}" if site.label != folder else folder


def resolve_site(name: str, available: Sequence[str] | None = None) -> str:
    """Return the folder name of the site called ``name``.

    Args:
        name: a paper label (``"S4"``), a hospital (``"UCL"``) or a folder (``"ISBI_1.5"``).
        available: the site folders actually present; when given, the result must be one
            of them and folders outside the paper's six are accepted by their own name.

    Raises:
        CrossDistillError: the name matches no site, naming the sites that exist.
    """
    key = name.strip().lower()
    folders = list(available) if available is not None else list(PAPER_FOLDERS)
    for folder in folders:
        if folder.lower() == key:
            return folder
    for site in PAPER_SITES:
        if key in (site.label.lower(), site.name.lower(), site.folder.lower()):
            if site.folder in folders:
                return site.folder
            break
    known = ", ".join(_spellings(folders))
    raise CrossDistillError(f"unknown site '{name}'; known sites: {known}")


def resolve_sites(names: Iterable[str], available: Sequence[str] | None = None) -> list[str]:
    """:func:`resolve_site` for each name, duplicates removed, order kept."""
    out: list[str] = []
    for name in names:
        folder = resolve_site(name, available)
        if folder not in out:
            out.append(folder)
    return out


def _spellings(folders: Iterable[str]) -> list[str]:
    out = []
    for folder in folders:
        site = site_info(folder)
        out.append(f"{site.label}/{site.name}/{folder}" if site.label != folder else folder)
    return out
