"""``crossdistill synth``: a multi-site prostate MRI phantom in the release layout.

Each case is a random pelvis (:mod:`crossdistill.data.anatomy`) scanned with its site's
protocol (:mod:`crossdistill.data.acquisition`). Everything is seeded per (seed, site, case),
so the same seed gives the same bytes, and a site's cases do not depend on which other sites
were requested. Files are gzip-compressed with a zero timestamp and no embedded name.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from crossdistill.data.acquisition import ACQUISITIONS, Acquisition, acquire
from crossdistill.data.anatomy import Tissue, sample_anatomy
from crossdistill.data.sites import PAPER_FOLDERS, resolve_sites, site_info
from crossdistill.errors import CrossDistillError

GENERATOR_VERSION = "1"
ZONE_SITES = ("ISBI", "ISBI_1.5")  # the NCI-ISBI masks: 1 = central gland, 2 = PZ


def synthesize(
    out_dir: str | Path,
    sites: Sequence[str] | None = None,
    cases_per_site: int = 10,
    size: int = 128,
    slices: int = 24,
    seed: int = 0,
    montage: bool = True,
) -> dict[str, object]:
    """Write the synthetic sites into ``out_dir``.

    Layout: ``out_dir/<FOLDER>/CaseNN.nii.gz`` (int16 image) and
    ``CaseNN_segmentation.nii.gz`` (uint8 mask: zones 1/2 for ``ISBI`` and ``ISBI_1.5``,
    binary elsewhere), ``out_dir/sites.json`` (acquisition parameters, written last) and,
    with ``montage``, ``out_dir/montage_<FOLDER>.png``.

    Args:
        out_dir: output folder (created).
        sites: site names (``S4``, ``UCL``, ``ISBI_1.5`` ...); default all six.
        cases_per_site: cases per site.
        size: in-plane matrix (pixels); the pixel spacing is the site's FOV / size.
        slices: slices per volume; their spacing is the site's slab coverage / slices.
        seed: random seed.
        montage: also draw one PNG per site.

    Returns:
        ``{"out_dir", "sites", "cases", "cases_per_site", "seconds"}``.

    Raises:
        CrossDistillError: an unknown site or an out-of-range size.
    """
    start = time.perf_counter()
    if isinstance(sites, str):
        sites = [name for name in sites.split(",") if name.strip()]
    folders = resolve_sites(sites) if sites else list(PAPER_FOLDERS)
    if cases_per_site < 1 or cases_per_site > 99:
        raise CrossDistillError(f"cases_per_site must be 1..99, got {cases_per_site}")
    if not isinstance(seed, int) or seed < 0:
        raise CrossDistillError(f"seed must be a non-negative integer, got {seed!r}")
    if size < 16 or slices < 6:
        raise CrossDistillError(f"size must be >= 16 and slices >= 6, got {size}, {slices}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CrossDistillError(f"{out}: exists and is not a folder")
    meta: dict[str, object] = {}
    for folder in folders:
        acq = ACQUISITIONS[folder]
        (out / folder).mkdir(parents=True, exist_ok=True)
        shown = []
        for case in range(cases_per_site):
            image, mask = synth_case(acq, case, size, slices, seed)
            name = f"Case{case:02d}"
            affine = acq.affine(size, slices)
            _save(image, affine, out / folder / f"{name}.nii.gz", folder)
            _save(mask, affine, out / folder / f"{name}_segmentation.nii.gz", folder)
            if montage and case < 6:
                shown.append((name, image, mask))
        if montage:
            _montage(out / f"montage_{folder}.png", acq, shown, size, slices)
        meta[folder] = _site_meta(acq, size, slices)
    info = {
        "generator": "crossdistill.data.synth",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "slices": slices,
        "cases_per_site": cases_per_site,
        "sites": meta,
    }
    (out / "sites.json").write_text(json.dumps(info, indent=2) + "\n")
    return {
        "out_dir": str(out),
        "sites": folders,
        "cases": cases_per_site * len(folders),
        "cases_per_site": cases_per_site,
        "seconds": time.perf_counter() - start,
    }


def synth_case(
    acq: Acquisition, case: int, size: int, slices: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """One case: int16 image and uint8 mask, each (size, size, slices)."""
    key = [seed, zlib.crc32(acq.folder.encode()), case]  # independent of the other sites
    anatomy_rng, scan_rng = (np.random.default_rng([*key, stream]) for stream in (0, 1))
    anatomy = sample_anatomy(anatomy_rng, endorectal=acq.endorectal)
    image, zone, _ = acquire(anatomy, acq, size, slices, scan_rng)
    image = np.clip(np.rint(image), -32768, 32767).astype(np.int16)
    mask = zone if acq.folder in ZONE_SITES else (zone > 0)
    return image, mask.astype(np.uint8)


def _save(data: np.ndarray, affine: np.ndarray, path: Path, folder: str) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = f"crossdistill phantom {folder}".encode()[:79]
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with path.open("wb") as f, gzip.GzipFile("", "wb", compresslevel=1, fileobj=f, mtime=0) as gz:
        gz.write(img.to_bytes())


def _site_meta(acq: Acquisition, size: int, slices: int) -> dict[str, object]:
    site = site_info(acq.folder)
    labels = {"1": "central gland", "2": "peripheral zone"}
    sig = acq.tissue_lut()[0]  # relative T2w signal, fat = 1 before fat suppression
    return {
        "label": site.label,
        "name": site.name,
        "source": site.source,
        "acquisition": acq.to_dict(),
        "shape": [size, size, slices],
        "spacing_mm": [round(v, 6) for v in acq.spacing(size, slices)],
        "mask_labels": labels if acq.folder in ZONE_SITES else {"1": "prostate"},
        "tissue_signal": {t.name.lower(): round(float(sig[t]), 4) for t in Tissue},
    }


def _montage(path: Path, acq: Acquisition, shown: list, size: int, slices: int) -> None:
    """One PNG: the mid-gland slice of each shown case, with the mask's outline.

    Yellow outlines the prostate, cyan the peripheral zone (zone sites only). The mosaic is
    drawn in numpy and shown in a single axes, which keeps matplotlib's cost small.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(shown), 3)
    rows = -(-len(shown) // cols)
    mosaic = np.zeros((rows * size, cols * size, 3), np.float32)
    for n, (_, image, mask) in enumerate(shown):
        k = int(np.argmax((mask > 0).sum((0, 1)))) if mask.any() else slices // 2
        sl = image[:, :, k].T.astype(np.float32)
        lo, hi = np.percentile(sl, [0.5, 99.5])
        tile = np.repeat(np.clip((sl - lo) / max(hi - lo, 1e-6), 0, 1)[..., None], 3, axis=2)
        for label, colour in ((1, (1.0, 0.8, 0.0)), (2, (0.0, 0.9, 1.0))):
            region = label <= mask[:, :, k].T
            tile[region & ~ndimage.binary_erosion(region)] = colour
        r, c = divmod(n, cols)
        mosaic[r * size : (r + 1) * size, c * size : (c + 1) * size] = tile
    fig = plt.figure(figsize=(3 * cols, 3 * rows + 0.5))
    ax = fig.add_axes((0, 0, 1, 3 * rows / (3 * rows + 0.5)))
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    for n, (name, _, _) in enumerate(shown):
        r, c = divmod(n, cols)
        ax.text(c * size + 2, r * size + 2, name, color="w", fontsize=7, va="top")
    site, (dx, _, dz) = site_info(acq.folder), acq.spacing(size, slices)
    fig.suptitle(
        f"{site.label} {site.name} ({acq.folder}): {acq.scanner}\n"
        f"TE/TR {acq.te_ms:g}/{acq.tr_ms:g} ms, FOV {acq.fov_mm:g} mm, voxel "
        f"{dx:.2f}×{dx:.2f}×{dz:.2f} mm, slice {acq.slice_thickness_mm:g} mm",
        fontsize=7,
        y=0.995,
    )
    fig.savefig(path, dpi=max(100, size // 1.5))
    plt.close(fig)
