"""Per-site MR acquisition model: turns a continuous :class:`Anatomy` into a T2w volume.

The chain, per case: tissue signal from the spin-echo equation at the site's TE/TR and
field strength → smooth tissue texture → partial-volume average over the slice profile →
in-plane point-spread function → receive-coil sensitivity (smooth random bias, phased-array
surface brightening, endorectal-coil hotspot) → respiratory/peristaltic motion ghosts along
the phase-encoding axis → Rician noise → scanner units (scale, offset).
The six release sites differ in every step, which is what makes them distinct domains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import product

import numpy as np
from scipy import ndimage

from crossdistill.data.anatomy import TISSUE_MR, Anatomy, Tissue


@dataclass(frozen=True)
class Acquisition:
    """How one site scans: contrast, geometry, coils, noise and scanner units.

    Attributes:
        folder: the site's folder in the release layout.
        scanner: field strength, vendor and coil, in words.
        field_t: main field B0 (T); T1 grows as B0**0.35, T2 shortens slightly with B0.
        te_ms: effective echo time (ms) of the T2w turbo spin echo: longer TE, more T2 weight
            (darker muscle and central gland relative to fat, urine and PZ).
        tr_ms: repetition time (ms): short TR saturates long-T1 tissues (urine, gland).
        fat_suppression: fraction of the fat (and fatty marrow) signal removed, 0..1.
        fov_mm: square in-plane field of view (mm); pixel spacing is ``fov_mm / size``, so the
            prostate fills a different fraction of the image at each site.
        resolution_mm: acquired in-plane resolution (mm), the FWHM of the in-plane PSF (at
            least one output pixel).
        slice_thickness_mm: width of the (boxcar) slice profile; the voxel averages the
            anatomy over it (partial volume).
        coverage_mm: extent of the slab along z; slices are ``coverage_mm / slices`` apart
            (thinner slices than spacing leave a gap).
        noise_sigma: standard deviation of the complex Gaussian noise, relative to the
            signal of fat at unit coil sensitivity; the magnitude image is Rician.
        bias_std: strength of the smooth random multiplicative bias field (std of its log).
        surface_coil: extra sensitivity of the phased-array coil at the body surface (gain at
            the skin relative to the centre; 0 = uniform body coil).
        erc_gain: peak extra sensitivity of an endorectal coil at its loop (0 = no coil).
        erc_radius_mm: distance over which the endorectal-coil sensitivity halves (roughly).
        scale: scanner units per unit signal (fat at unit sensitivity).
        offset: additive baseline of the stored values (scanner units).
        case_gain_std: case-to-case std of the log of the receiver gain.
        placement_mm: std of the in-plane offset of the field of view from the gland centre.
        ghosting: mean amplitude of the motion ghosts, relative to the image: periodic
            motion during the phase-encoding steps replicates the image at ±1/4 and ±1/2 of
            the field of view along the anterior–posterior (phase-encoding) axis. 0 = none
            (sites scanned with an antispasmodic and respiratory compensation).
    """

    folder: str
    scanner: str
    field_t: float
    te_ms: float
    tr_ms: float
    fat_suppression: float
    fov_mm: float
    resolution_mm: float
    slice_thickness_mm: float
    coverage_mm: float
    noise_sigma: float
    bias_std: float
    surface_coil: float
    erc_gain: float
    erc_radius_mm: float
    scale: float
    offset: float
    case_gain_std: float = 0.1
    placement_mm: float = 4.0
    ghosting: float = 0.0

    @property
    def endorectal(self) -> bool:
        """The site scans with an endorectal coil."""
        return self.erc_gain > 0

    def spacing(self, size: int, slices: int) -> tuple[float, float, float]:
        """Voxel spacing (mm) for a ``size``×``size``×``slices`` volume."""
        d = self.fov_mm / size
        return d, d, self.coverage_mm / slices

    def affine(self, size: int, slices: int) -> np.ndarray:
        """Voxel → RAS (mm): i towards the patient's left, j posterior, k superior, centred."""
        dx, dy, dz = self.spacing(size, slices)
        aff = np.diag([-dx, -dy, dz, 1.0])
        aff[:3, 3] = [dx * (size - 1) / 2, dy * (size - 1) / 2, -dz * (slices - 1) / 2]
        return aff

    def tissue_lut(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-tissue signal (fat = 1) and texture amplitude × signal, indexed by Tissue."""
        n = max(Tissue) + 1
        sig, amp = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for t, mr in TISSUE_MR.items():
            sig[t], amp[t] = self._spin_echo(mr.pd, mr.t1_ms, mr.t2_ms), mr.texture
        fat = TISSUE_MR[Tissue.FAT]
        sig /= self._spin_echo(fat.pd, fat.t1_ms, fat.t2_ms)
        sig[[Tissue.FAT, Tissue.MARROW]] *= 1 - self.fat_suppression
        return sig, sig * amp

    def _spin_echo(self, pd: float, t1: float, t2: float) -> float:
        t1 = t1 * (self.field_t / 3.0) ** 0.35
        t2 = t2 * (3.0 / self.field_t) ** 0.1
        return pd * (1 - np.exp(-self.tr_ms / t1)) * np.exp(-self.te_ms / t2)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "endorectal_coil": self.endorectal}


_SITES = (
    Acquisition(
        "ISBI",
        "3 T Siemens, pelvic phased-array (RUNMC)",
        field_t=3.0,
        te_ms=104,
        tr_ms=4000,
        fat_suppression=0.0,
        fov_mm=180,
        resolution_mm=0.6,
        slice_thickness_mm=3.6,
        coverage_mm=86,
        noise_sigma=0.025,
        bias_std=0.10,
        surface_coil=0.8,
        erc_gain=0.0,
        erc_radius_mm=15,
        scale=500,
        offset=0,
    ),
    Acquisition(
        "ISBI_1.5",
        "1.5 T Philips, endorectal coil (BMC)",
        field_t=1.5,
        te_ms=120,
        tr_ms=5000,
        fat_suppression=0.0,
        fov_mm=130,
        resolution_mm=0.4,
        slice_thickness_mm=3.0,
        coverage_mm=78,
        noise_sigma=0.045,
        bias_std=0.10,
        surface_coil=0.3,
        erc_gain=4.0,
        erc_radius_mm=15,
        scale=1200,
        offset=0,
    ),
    Acquisition(
        "I2CVB",
        "3 T Siemens, phased-array, short TE/TR, partial fat saturation (HCRUDB)",
        field_t=3.0,
        te_ms=60,
        tr_ms=2200,
        fat_suppression=0.45,
        fov_mm=270,
        resolution_mm=0.7,
        slice_thickness_mm=1.25,
        coverage_mm=80,
        noise_sigma=0.06,
        bias_std=0.30,
        surface_coil=0.5,
        erc_gain=0.0,
        erc_radius_mm=15,
        scale=180,
        offset=40,
    ),
    Acquisition(
        "UCL",
        "1.5 T Siemens, phased-array, fat-saturated, no antispasmodic (UCL)",
        field_t=1.5,
        te_ms=100,
        tr_ms=4500,
        fat_suppression=0.35,
        fov_mm=200,
        resolution_mm=0.5,
        slice_thickness_mm=3.3,
        coverage_mm=80,
        noise_sigma=0.03,
        bias_std=0.15,
        surface_coil=0.6,
        erc_gain=0.0,
        erc_radius_mm=15,
        scale=800,
        offset=0,
        ghosting=0.3,
    ),
    Acquisition(
        "BIDMC",
        "3 T GE, endorectal coil (BIDMC)",
        field_t=3.0,
        te_ms=130,
        tr_ms=6000,
        fat_suppression=0.0,
        fov_mm=150,
        resolution_mm=0.3,
        slice_thickness_mm=2.5,
        coverage_mm=78,
        noise_sigma=0.05,
        bias_std=0.10,
        surface_coil=0.3,
        erc_gain=6.0,
        erc_radius_mm=12,
        scale=300,
        offset=10,
    ),
    Acquisition(
        "HK",
        "1.5 T Siemens, endorectal coil, low-resolution matrix (HK)",
        field_t=1.5,
        te_ms=96,
        tr_ms=3500,
        fat_suppression=0.0,
        fov_mm=230,
        resolution_mm=2.8,
        slice_thickness_mm=3.6,
        coverage_mm=86,
        noise_sigma=0.08,
        bias_std=0.15,
        surface_coil=0.3,
        erc_gain=2.0,
        erc_radius_mm=20,
        scale=350,
        offset=0,
    ),
)
ACQUISITIONS: dict[str, Acquisition] = {a.folder: a for a in _SITES}
"""The six release sites' protocols, keyed by folder."""

SEPTA_CONTRAST = 0.45  # signal drop at the centre of a fibrous septum in fat
_POLY2 = [e for e in product(range(3), repeat=3) if 1 <= sum(e) <= 2]


def _sub_slices(thickness: float) -> np.ndarray:
    """Offsets (mm) of the sub-slices that sample a boxcar slice profile (odd count)."""
    n = 2 * round(thickness / 2.5) + 1
    return (np.arange(n) - (n - 1) / 2) * thickness / n


def acquire(
    anatomy: Anatomy, acq: Acquisition, size: int, slices: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scan ``anatomy`` with ``acq``.

    Returns:
        ``(image, zone, affine)``: float32 image in scanner units and uint8 zone mask
        (1 central gland, 2 PZ, sampled at the slice centre), both (size, size, slices)
        in voxel order i, j, k, and the 4×4 voxel → RAS affine.
    """
    affine = acq.affine(size, slices)
    dx, _, dz = acq.spacing(size, slices)
    # the technologist centres the slab on the gland; the patient lies slightly rotated
    shift = np.clip(
        rng.normal(0, acq.placement_mm, 2), -2.5 * acq.placement_mm, 2.5 * acq.placement_mm
    )
    tz, theta = rng.uniform(-1.5, 1.5), np.radians(rng.uniform(-4, 4))
    idx = np.arange(size) - (size - 1) / 2
    wx, wy = np.meshgrid(-dx * idx - shift[0], -dx * idx - shift[1], indexing="ij")
    c, s = np.cos(theta), np.sin(theta)
    px, py = (c * wx + s * wy).astype(np.float32), (-s * wx + c * wy).astype(np.float32)
    pz = (np.arange(slices) - (slices - 1) / 2) * dz - tz
    offsets = _sub_slices(acq.slice_thickness_mm)
    nsub = offsets.size
    tissue, zone = _render(anatomy, px, py, (pz[:, None] + offsets[None]).ravel())
    sig, sig_amp = acq.tissue_lut()
    shape = (slices, nsub, size, size)
    image = sig[tissue].reshape(shape).mean(1)
    coarse, gate, fine = _fields(anatomy, px, py, pz.astype(np.float32), dx)
    image += (coarse + fine) * sig_amp[tissue].reshape(shape).mean(1)
    # fibrous septa in fat: thin dark broken lines along the zero level set of a coarse field
    fat = (tissue == Tissue.FAT).reshape(shape).mean(1, dtype=np.float32)
    septa = np.exp(-((coarse / 0.08) ** 2)) * np.clip(gate, 0, 1)
    image -= (SEPTA_CONTRAST * sig[Tissue.FAT]) * fat * septa
    sigma_px = max(acq.resolution_mm, dx) / 2.355 / dx
    image = ndimage.gaussian_filter(image, (0, sigma_px, sigma_px), mode="nearest")
    image *= _sensitivity(anatomy, acq, px, py, pz, rng)
    image *= np.exp(rng.normal(0, acq.case_gain_std))
    if acq.ghosting > 0:  # drawn only here, so the other sites' cases keep their bytes
        image = _motion_ghosts(image, acq.ghosting, rng)
    noise = rng.standard_normal((2, *image.shape), dtype=np.float32) * acq.noise_sigma
    image = np.hypot(image + noise[0], noise[1]) * acq.scale + acq.offset
    mask = zone.reshape(shape)[:, nsub // 2]
    return image.transpose(1, 2, 0), mask.transpose(1, 2, 0), affine


def _motion_ghosts(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """Add motion ghosts to ``image (nz, ni, nj)`` along j (anterior–posterior).

    A periodic displacement during k-space acquisition modulates the phase-encoding lines;
    its image is the object plus shifted replicas. Here: replicas at ±N/4 (amplitude ``a``)
    and ±N/2 (``a/2``) with ``a = level · U(0.6, 1.4)`` per case, wrapped around the field of
    view as in the scanner's reconstruction.
    """
    n = image.shape[2]
    a = float(level * rng.uniform(0.6, 1.4))
    ghosts = sum(
        w * (np.roll(image, s, axis=2) + np.roll(image, -s, axis=2)) / 2
        for s, w in ((n // 4, a), (n // 2, a / 2))
    )
    return image + ghosts


def _render(
    anatomy: Anatomy, px: np.ndarray, py: np.ndarray, pz: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Anatomy.render` at planes in any order (overlapping slices interleave)."""
    order = np.argsort(pz, kind="stable")
    if np.all(order == np.arange(pz.size)):
        return anatomy.render(px, py, pz)
    tissue, zone = anatomy.render(px, py, pz[order])
    inverse = np.argsort(order)
    return tissue[inverse], zone[inverse]


def _fields(
    anatomy: Anatomy, px: np.ndarray, py: np.ndarray, pz: np.ndarray, dx: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anatomy's random fields on the grid; the coarse ones via a ~3 mm sub-grid."""
    n = px.shape[0]
    m = min(n, int(np.ceil((n - 1) * dx / 3.0)) + 1)
    if m < n:  # px, py are affine in the pixel indices: evaluate them at fractional indices
        t = np.linspace(0, n - 1, m, dtype=np.float32)
        sub = [
            c[0, 0] + (c[1, 0] - c[0, 0]) * t[:, None] + (c[0, 1] - c[0, 0]) * t[None]
            for c in (px, py)
        ]
        coarse = anatomy.coarse_fields(sub[0], sub[1], pz)
        pos = np.arange(n) * (m - 1) / (n - 1)  # linear upsampling, no BLAS (threads)
        lo = np.minimum(pos.astype(int), m - 2)
        f = (pos - lo).astype(np.float32)
        coarse = coarse[..., lo] * (1 - f) + coarse[..., lo + 1] * f
        f = f[:, None]
        coarse = coarse[..., lo, :] * (1 - f) + coarse[..., lo + 1, :] * f
    else:
        coarse = anatomy.coarse_fields(px, py, pz)
    return coarse[0], coarse[1], anatomy.fine_field(px, py, pz)


def _sensitivity(
    anatomy: Anatomy,
    acq: Acquisition,
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Receive sensitivity (nz, ni, nj): smooth random × surface array × endorectal coil."""
    x, y, z = px / 150, py / 150, (pz / 150).astype(np.float32)[:, None, None]
    c = dict(zip(_POLY2, rng.normal(0, acq.bias_std / 2, len(_POLY2)).tolist(), strict=True))
    in_plane = sum(c[i, j, 0] * x**i * y**j for i, j, k in _POLY2 if k == 0)
    log_b = in_plane[None] + z * (c[0, 0, 1] + c[1, 0, 1] * x + c[0, 1, 1] * y + c[0, 0, 2] * z)
    ax, ay, cy, p = anatomy.body
    rho = np.minimum(np.abs(px / ax) ** p + np.abs((py - cy) / ay) ** p, 1.0)
    sens = np.exp(log_b) * (1 + acq.surface_coil * rho**2)[None]
    if acq.endorectal:
        r, g = anatomy.rectum, anatomy.gland
        # the coil loop lies in the balloon against the anterior rectal wall, ~4 cm long
        cx = float(r.x0 + rng.normal(0, 1.5))
        cyz = (r.centre_y(pz) + r.ry - r.wall - 2).astype(np.float32)[:, None, None]
        dz = np.maximum(np.abs(pz - g.center[2]) - 20, 0).astype(np.float32)[:, None, None]
        d2 = (px[None] - cx) ** 2 + (py[None] - cyz) ** 2 + dz**2
        gain = float(acq.erc_gain * np.exp(rng.normal(0, 0.15)))
        sens = sens * (1 + gain / (1 + d2 / float(acq.erc_radius_mm**2)) ** 1.5)
    return sens.astype(np.float32)
