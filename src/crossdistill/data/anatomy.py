"""Random male pelvic anatomy on a continuous patient frame, for the prostate phantom.

The patient frame is in millimetres, RAS-like: +x towards the patient's right, +y anterior,
+z superior, origin at the nominal centre of the prostate. Every structure is an analytic
solid (ellipse extrusions, rotated ellipsoids, a curved tube, a deformed gland), so one
:class:`Anatomy` can be sampled on any grid: any resolution, field of view or slice position.
The acquisition model (:mod:`crossdistill.data.acquisition`) turns the tissue map into an
image; this module knows only geometry and the tissues' physical MR properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from itertools import product

import numpy as np
from scipy import ndimage


class Tissue(IntEnum):
    """Tissue classes of the phantom (values of the tissue label map)."""

    AIR = 0
    FAT = 1  # subcutaneous, periprostatic, ischiorectal fat
    SKIN = 2
    MUSCLE = 3  # obturator internus, levator ani, gluteus, iliopsoas, rectus, adductors
    CORTEX = 4  # cortical bone
    MARROW = 5  # fatty bone marrow
    VESSEL = 6  # flow void of fast-flowing blood
    URINE = 7
    BLADDER_WALL = 8
    SEMINAL = 9  # seminal-vesicle fluid
    RECTAL_WALL = 10
    LUMEN_GAS = 11  # rectal gas, or the air-filled balloon of an endorectal coil
    FECES = 12
    CAPSULE = 13  # prostatic capsule and the TZ/PZ pseudocapsule (fibromuscular, dark)
    TRANSITION = 14  # central gland: transition + central zone (BPH nodules)
    PERIPHERAL = 15  # peripheral zone (glandular, long T2)
    PLEXUS = 16  # slow-flowing venous blood (periprostatic plexus): bright


@dataclass(frozen=True)
class TissueMR:
    """Physical MR properties of a tissue.

    Attributes:
        pd: proton density relative to pure water.
        t1_ms: longitudinal relaxation time at 3 T (ms).
        t2_ms: transverse relaxation time at 3 T (ms); for fat, the apparent T2 of a
            turbo-spin-echo train (J-coupling makes fat bright on TSE T2w images).
        texture: relative amplitude of the tissue's smooth random signal variation.
    """

    pd: float
    t1_ms: float
    t2_ms: float
    texture: float


TISSUE_MR: dict[Tissue, TissueMR] = {
    Tissue.AIR: TissueMR(0.0, 1000, 1, 0.0),
    Tissue.FAT: TissueMR(0.95, 380, 165, 0.06),
    Tissue.SKIN: TissueMR(0.75, 1000, 50, 0.05),
    Tissue.MUSCLE: TissueMR(0.8, 1400, 50, 0.10),
    Tissue.CORTEX: TissueMR(0.04, 1000, 5, 0.0),
    Tissue.MARROW: TissueMR(0.8, 500, 105, 0.12),
    Tissue.VESSEL: TissueMR(0.06, 1600, 40, 0.0),
    Tissue.URINE: TissueMR(1.0, 3500, 1200, 0.02),
    Tissue.BLADDER_WALL: TissueMR(0.8, 1400, 55, 0.05),
    Tissue.SEMINAL: TissueMR(0.95, 2000, 260, 0.25),
    Tissue.RECTAL_WALL: TissueMR(0.8, 1300, 62, 0.10),
    Tissue.LUMEN_GAS: TissueMR(0.02, 1000, 20, 0.0),
    Tissue.FECES: TissueMR(0.55, 900, 55, 0.35),
    Tissue.CAPSULE: TissueMR(0.75, 1300, 50, 0.05),
    Tissue.TRANSITION: TissueMR(0.85, 1600, 88, 0.22),
    Tissue.PERIPHERAL: TissueMR(0.88, 1700, 150, 0.10),
    Tissue.PLEXUS: TissueMR(0.9, 1900, 220, 0.15),
}

# Monomials x^i y^j z^k of degree 1..3 on the unit sphere: the span of spherical harmonics
# of degree <= 3 (without the constant), used for smooth random shape deformations.
_MONOMIALS = [e for e in product(range(4), repeat=3) if 1 <= sum(e) <= 3]


def _rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation matrix (about z, then x, then y), angles in radians."""
    cz, sz, cx, sx, cy, sy = (
        np.cos(yaw),
        np.sin(yaw),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(roll),
        np.sin(roll),
    )
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return rz @ rx @ ry


@dataclass(frozen=True)
class Prism:
    """An elliptic cylinder along z: ``((x', y') / (ax, ay))`` inside the unit circle.

    ``angle`` rotates the ellipse in-plane (radians); ``y_max`` clips it to y < y_max.
    """

    tissue: Tissue
    cx: float
    cy: float
    ax: float
    ay: float
    z0: float
    z1: float
    angle: float = 0.0
    y_max: float = np.inf


@dataclass(frozen=True)
class Ellipsoid:
    """A rotated ellipsoid: centre (mm), semi-axes (mm), rotation matrix (local → patient)."""

    tissue: Tissue
    center: tuple[float, float, float]
    axes: tuple[float, float, float]
    rot: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass(frozen=True)
class Gland:
    """The prostate: a tapered, deformed ellipsoid split into central gland and PZ.

    Attributes:
        center: gland centre (mm); axes: semi-axes LR, AP, CC (mm); rot: orientation.
        taper: widening towards the base (radius scale ``1 + taper * w`` at height w).
        flatten: posterior compression by the rectum (0 = none).
        indent: concave posterior notch depth (fraction of the AP semi-axis).
        coef: shape deformation coefficients (see ``_sphere_poly``).
        cg_size: linear size of the central gland relative to the gland (0..1).
        cg_shift: anterior / superior offset of the central gland (normalised units).
        capsule_mm: thickness of the dark capsule.
    """

    center: np.ndarray
    axes: np.ndarray
    rot: np.ndarray
    taper: float
    flatten: float
    indent: float
    coef: np.ndarray
    cg_size: float
    cg_shift: tuple[float, float]
    capsule_mm: float = 1.0

    def volume_ml(self) -> float:
        """Volume of the underlying ellipsoid (mL), ignoring the small deformations."""
        return float(4 / 3 * np.pi * np.prod(self.axes) / 1000)


@dataclass(frozen=True)
class Rectum:
    """A tube along z whose centre curves posteriorly: ``y(z) = y0 - curve * z**2``.

    ``rx, ry``: outer semi-axes (mm); ``wall``: wall thickness (mm); ``balloon``: lumen is
    the air-filled balloon of an endorectal coil; ``feces``: fraction of the lumen with stool.
    """

    x0: float
    y0: float
    curve: float
    rx: float
    ry: float
    wall: float
    balloon: bool
    feces: float

    def centre_y(self, z: np.ndarray) -> np.ndarray:
        return self.y0 - self.curve * z**2


@dataclass(frozen=True, eq=False)
class Anatomy:
    """One random patient. Build with :func:`sample_anatomy`, sample with :meth:`render`."""

    body: tuple[float, float, float, float]  # ax, ay, centre y, superellipse exponent
    prisms: tuple[Prism, ...]  # muscles, bones, vessels: painted in order
    solids: tuple[Ellipsoid, ...]  # femoral heads / necks, bladder, seminal vesicles
    rectum: Rectum
    gland: Gland
    warp: np.ndarray  # (2, K, 4): in-plane displacement modes (kx, ky, phase, amplitude mm)
    coarse: np.ndarray  # two smooth random fields on an 8 mm lattice (origin _COARSE_ORIGIN)
    fine: np.ndarray  # finer field around the gland, 2.5 mm lattice (origin _FINE_ORIGIN)

    def warped(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smoothly displaced in-plane coordinates: makes every cross-section irregular."""
        out = []
        for modes, p in zip(self.warp, (px, py), strict=True):
            d = np.zeros_like(p)
            for kx, ky, ph, amp in modes:
                d += amp * np.sin(kx * px + ky * py + ph)
            out.append(p + d)
        return out[0], out[1]

    def render(
        self, px: np.ndarray, py: np.ndarray, pz: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tissue labels and prostate zones on a grid.

        Args:
            px, py: patient coordinates (mm) of the in-plane grid points, shape (ni, nj).
            pz: patient z (mm) of each plane, increasing, shape (nz,).

        Returns:
            ``(tissue, zone)``, uint8 arrays of shape (nz, ni, nj); zone 1 = central gland,
            2 = peripheral zone, 0 = outside the prostate.
        """
        px, py = self.warped(px, py)
        ax, ay, cy, p = self.body
        body = (np.abs(px / ax) ** p + np.abs((py - cy) / ay) ** p) ** (1 / p)
        base = np.where(body < 1, Tissue.SKIN, Tissue.AIR).astype(np.uint8)
        base[body < 1 - 2.0 / ay] = Tissue.FAT
        lab = np.repeat(base[None], pz.size, axis=0)
        for prism in self.prisms:
            _paint_prism(lab, px, py, pz, prism)
        for solid in self.solids:
            _paint_ellipsoid(lab, px, py, pz, solid)
        _paint_rectum(lab, px, py, pz, self)
        zone = np.zeros_like(lab)
        _paint_gland(lab, zone, px, py, pz, self.gland)
        if (body >= 1).any():
            lab[:, body >= 1] = Tissue.AIR
        return lab, zone

    def coarse_fields(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
        """Two independent smooth random fields (8 mm lattice, zero mean, about unit std).

        On a grid: ``px, py`` of shape (ni, nj), ``pz`` of shape (nz,) → (2, nz, ni, nj);
        or at scattered points: three arrays of one shape → (2, n). Points are warped like
        :meth:`render`'s.
        """
        return np.stack(
            [self._sample(f, px, py, pz, _COARSE_ORIGIN, _COARSE_STEP) for f in self.coarse]
        )

    def fine_field(self, px: np.ndarray, py: np.ndarray, pz: np.ndarray) -> np.ndarray:
        """A finer random field (2.5 mm lattice) in a 10 cm box around the gland, 0 outside."""
        return self._sample(self.fine, px, py, pz, _FINE_ORIGIN, _FINE_STEP)

    def _sample(self, lattice, px, py, pz, origin, step) -> np.ndarray:
        """Linear interpolation of a lattice field; 0 outside the lattice."""
        px, py = self.warped(px, py)
        ix, iy, iz = ((c - o) / step for c, o in zip((px, py, pz), origin, strict=True))
        if px.shape == pz.shape:  # scattered points
            return ndimage.map_coordinates(lattice, [ix, iy, iz], order=1, cval=0.0)
        # on a grid: interpolate in z once per plane, then bilinearly in-plane for all planes
        out = np.zeros((pz.size, px.size), np.float32)
        kz = (iz >= 0) & (iz <= lattice.shape[2] - 1)
        box = (
            (ix >= 0) & (ix <= lattice.shape[0] - 1) & (iy >= 0) & (iy <= lattice.shape[1] - 1)
        ).ravel()
        if kz.any() and box.any():
            k0 = np.minimum(iz[kz].astype(int), lattice.shape[2] - 2)
            wz = (iz[kz] - k0).astype(np.float32)
            planes = lattice[:, :, k0] * (1 - wz) + lattice[:, :, k0 + 1] * wz  # (nx, ny, nk)
            planes = np.moveaxis(planes, 2, 0)
            x, y = ix.ravel()[box], iy.ravel()[box]
            i0 = np.minimum(x.astype(int), lattice.shape[0] - 2)
            j0 = np.minimum(y.astype(int), lattice.shape[1] - 2)
            wx, wy = x - i0, y - j0
            out[np.ix_(kz, box)] = (
                planes[:, i0, j0] * ((1 - wx) * (1 - wy))
                + planes[:, i0 + 1, j0] * (wx * (1 - wy))
                + planes[:, i0, j0 + 1] * ((1 - wx) * wy)
                + planes[:, i0 + 1, j0 + 1] * (wx * wy)
            )
        return out.reshape(pz.size, *px.shape)


_COARSE_STEP, _FINE_STEP = 8.0, 2.5
_COARSE_ORIGIN = (-200.0, -160.0, -80.0)
_FINE_ORIGIN = (-50.0, -55.0, -45.0)
_COARSE_SHAPE, _FINE_SHAPE = (51, 41, 21), (41, 41, 37)


def _z_range(pz: np.ndarray, z0: float, z1: float) -> slice:
    return slice(int(np.searchsorted(pz, z0)), int(np.searchsorted(pz, z1)))


def _paint_prism(lab: np.ndarray, px, py, pz, s: Prism) -> None:
    zs = _z_range(pz, s.z0, s.z1)
    reach = max(s.ax, s.ay)
    if zs.start >= zs.stop or not (
        px.min() - reach < s.cx < px.max() + reach and py.min() - reach < s.cy < py.max() + reach
    ):
        return
    c, sn = float(np.cos(s.angle)), float(np.sin(s.angle))
    dx, dy = px - float(s.cx), py - float(s.cy)
    u, v = (c * dx + sn * dy) / float(s.ax), (-sn * dx + c * dy) / float(s.ay)
    inside = (u * u + v * v < 1) & (py < s.y_max)
    if inside.any():
        ii, jj = np.nonzero(inside)
        si, sj = slice(ii.min(), ii.max() + 1), slice(jj.min(), jj.max() + 1)
        lab[zs, si, sj][:, inside[si, sj]] = s.tissue


def _crop(px, py, pz, center, radius, radius_z=None) -> tuple[slice, slice, slice] | None:
    near = (np.abs(px - center[0]) < radius) & (np.abs(py - center[1]) < radius)
    rz = radius if radius_z is None else radius_z
    zs = _z_range(pz, center[2] - rz, center[2] + rz)
    if not near.any() or zs.start >= zs.stop:
        return None
    ii, jj = np.nonzero(near)
    return zs, slice(ii.min(), ii.max() + 1), slice(jj.min(), jj.max() + 1)


def _local(px, py, pz, crop, center, rot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of the cropped grid in a solid's local frame, each (nz, ni, nj)."""
    zs, si, sj = crop
    d = (
        (px[si, sj] - float(center[0]))[None],
        (py[si, sj] - float(center[1]))[None],
        (pz[zs] - float(center[2]))[:, None, None].astype(np.float32),
    )
    r = rot.tolist()  # python floats keep the float32 arrays float32
    return tuple(r[0][k] * d[0] + r[1][k] * d[1] + r[2][k] * d[2] for k in range(3))


def _paint_ellipsoid(lab: np.ndarray, px, py, pz, e: Ellipsoid) -> None:
    crop = _crop(px, py, pz, e.center, max(e.axes))
    if crop is None:
        return
    u, v, w = _local(px, py, pz, crop, e.center, e.rot)
    a, b, c = (float(v) for v in e.axes)
    inside = (u / a) ** 2 + (v / b) ** 2 + (w / c) ** 2 < 1
    lab[crop][inside] = e.tissue


def _paint_rectum(lab: np.ndarray, px, py, pz, anat: Anatomy) -> None:
    r = anat.rectum
    near = (np.abs(px - r.x0) < r.rx + 1) & (py < r.y0 + r.ry + 1)
    ii, jj = np.nonzero(near)
    si, sj = slice(ii.min(), ii.max() + 1), slice(jj.min(), jj.max() + 1)
    dx = (px[si, sj] - float(r.x0))[None]
    dy = py[si, sj][None] - r.centre_y(pz).astype(np.float32)[:, None, None]
    outer = (dx / r.rx) ** 2 + (dy / r.ry) ** 2 < 1
    lumen = (dx / (r.rx - r.wall)) ** 2 + (dy / (r.ry - r.wall)) ** 2 < 1
    sub = lab[:, si, sj]
    sub[outer] = Tissue.RECTAL_WALL
    sub[lumen] = Tissue.LUMEN_GAS
    if not r.balloon and r.feces > 0 and lumen.any():
        k, i, j = np.nonzero(lumen)
        t = anat.coarse_fields(px[si, sj][i, j], py[si, sj][i, j], pz[k].astype(np.float32))[0]
        stool = t > np.quantile(t, 1 - r.feces)
        sub[k[stool], i[stool], j[stool]] = Tissue.FECES


def _sphere_poly(coef: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Smooth random function of the direction (u, v, w) (unit vector), degree <= 3."""
    pu, pv, pw = ([np.ones_like(a), a, a * a, a * a * a] for a in (u, v, w))
    out = np.zeros_like(u)
    for c, (i, j, k) in zip(coef, _MONOMIALS, strict=True):
        out += np.float32(c) * pu[i] * pv[j] * pw[k]
    return out


def _paint_gland(lab: np.ndarray, zone: np.ndarray, px, py, pz, g: Gland) -> None:
    a, b, c = (float(v) for v in g.axes)
    crop = _crop(px, py, pz, g.center, 1.15 * a * (1 + g.taper), 1.15 * max(b * (1 + g.taper), c))
    if crop is None:
        return
    x, y, z = _local(px, py, pz, crop, g.center, g.rot)
    w = z / c
    s = 1 + g.taper * np.clip(w, -1, 1)
    u, v = x / (a * s), y / (b * s)
    v = np.where(v < 0, v * (1 + g.flatten) - g.indent * np.exp(-(u**2) / 0.15), v)
    r = np.sqrt(u * u + v * v + w * w) + 1e-6
    edge = np.ones_like(r)
    band = (r > 0.85) & (r < 1.13)  # only there can the deformation move the surface
    ub, vb, wb, rb = u[band], v[band], w[band], r[band]
    edge[band] += np.clip(_sphere_poly(g.coef, ub / rb, vb / rb, wb / rb), -0.12, 0.12)
    inside = r < edge
    if not inside.any():
        return
    f = g.cg_size
    e = np.sqrt(u**2 + ((v - g.cg_shift[0]) / 0.9) ** 2 + ((w - g.cg_shift[1]) / 1.05) ** 2) / f
    # central gland: the inner ellipsoid united (with rounded corners) with the anterior
    # part of the gland, so the PZ is a posterolateral crescent with thin anterior horns
    ant = (0.35 + 0.5 * u * u - v) / 0.9
    central = inside & (np.logaddexp(-8 * (e - 1), -8 * ant) > 0)
    shell = g.capsule_mm / float(g.axes.min())
    tissue = np.where(central, Tissue.TRANSITION, Tissue.PERIPHERAL).astype(np.uint8)
    tissue[(r > edge - shell) | (~central & (e < 1 + 1.5 * shell))] = Tissue.CAPSULE
    sub_lab, sub_zone = lab[crop], zone[crop]
    sub_lab[inside] = tissue[inside]
    sub_zone[inside] = np.where(central[inside], 1, 2)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f / (f.std() + 1e-12)).astype(np.float32)


def _edge_taper(shape: tuple[int, ...], width: int) -> np.ndarray:
    """1 inside, falling smoothly to 0 over ``width`` cells at every face of the lattice."""
    out = np.ones(shape, np.float32)
    for axis, n in enumerate(shape):
        t = np.clip(np.minimum(np.arange(n), n - 1 - np.arange(n)) / width, 0, 1)
        ramp = (t * t * (3 - 2 * t)).astype(np.float32)
        out *= ramp.reshape([-1 if k == axis else 1 for k in range(len(shape))])
    return out


def sample_anatomy(rng: np.random.Generator, endorectal: bool = False) -> Anatomy:
    """Draw one random patient.

    Args:
        rng: the case's random generator (the only source of randomness).
        endorectal: an endorectal coil is in place: the rectum is distended by an
            air-filled balloon that presses on and flattens the posterior gland.
    """
    gland = _sample_gland(rng, endorectal)
    u = rng.uniform
    post = gland.center[1] - gland.axes[1] / (1 + gland.flatten)  # posterior surface, roughly
    if endorectal:  # rectum just behind the gland; a balloon distends it and closes the gap
        rx, ry, gap = u(20, 25), u(16, 20), u(0.0, 1.5)
    else:
        rx, ry, gap = u(15, 22), u(9, 13), u(2.0, 5.0)
    rectum = Rectum(
        u(-4, 4), post - gap - ry, u(0.002, 0.005), rx, ry, u(2.5, 4.0), endorectal, u(0.0, 0.5)
    )
    front = gland.center[1] + gland.axes[1] + u(45, 85)  # anterior skin
    xi = u(62, 72)  # ischium / acetabular column, each side
    bay = u(105, 130)
    body = (u(160, 195), bay, front - bay, u(2.2, 2.8))
    return Anatomy(
        body=body,
        prisms=tuple(_sample_prisms(rng, gland, rectum, xi, front, front - 2 * bay)),
        solids=tuple(_sample_solids(rng, gland, xi)),
        rectum=rectum,
        gland=gland,
        warp=_sample_warp(rng),
        coarse=np.stack([_smooth_noise(rng, _COARSE_SHAPE, 1.0) for _ in range(2)]),
        fine=_smooth_noise(rng, _FINE_SHAPE, 1.2) * _edge_taper(_FINE_SHAPE, 6),
    )


def _sample_gland(rng: np.random.Generator, endorectal: bool) -> Gland:
    """Volume 20-80 mL (log-uniform), LR : AP : CC about 1 : 0.7 : 0.78, CC <= 52 mm."""
    u = rng.uniform
    vol = float(np.exp(u(np.log(20), np.log(80))))
    ratio = np.array([1.0, u(0.62, 0.78), u(0.68, 0.85)])
    axes = (vol * 1000 * 3 / (4 * np.pi * ratio.prod())) ** (1 / 3) * ratio
    axes[2] = min(axes[2], 26.0)
    return Gland(
        center=np.array([u(-3, 3), u(-3, 3), u(-3, 3)]),
        axes=axes,
        rot=_rotation(np.radians(u(-6, 6)), np.radians(u(-15, 5)), np.radians(u(-4, 4))),
        taper=u(0.1, 0.3),
        flatten=u(0.25, 0.5) if endorectal else u(0.0, 0.25),
        indent=u(0.05, 0.15) if endorectal else u(0.0, 0.08),
        coef=rng.normal(0, 0.035, len(_MONOMIALS)),
        cg_size=float(np.clip(0.5 + 0.25 * (vol - 20) / 60 + rng.normal(0, 0.05), 0.45, 0.82)),
        cg_shift=(u(0.15, 0.35), u(0.05, 0.25)),
        capsule_mm=u(0.8, 1.4),
    )


def _sample_prisms(
    rng: np.random.Generator, g: Gland, r: Rectum, xi: float, front: float, back: float
) -> list[Prism]:
    """Muscles, bones and vessels, as elliptic cylinders (painted in this order)."""
    u = rng.uniform

    def deg(lo: float, hi: float) -> float:
        return float(np.radians(u(lo, hi)))

    (_, cy, cz), (a, b, _) = g.center, g.axes
    zg0, zg1 = cz - g.axes[2], cz + g.axes[2]
    ys = cy + b + u(14, 24)  # posterior surface of the pubic symphysis
    mu, out = Tissue.MUSCLE, []
    for s in (-1, 1):
        out += [
            Prism(
                mu, s * u(60, 80), back + u(35, 55), u(50, 65), u(32, 42), -80, 80, s * deg(20, 35)
            ),
            Prism(
                mu, s * (xi - u(14, 18)), u(-20, -5), u(8, 12), u(26, 34), -50, 45, s * deg(-8, 8)
            ),
            Prism(mu, s * u(70, 85), ys + u(15, 30), u(17, 23), u(14, 19), zg0 + 5, 80),
            Prism(mu, s * u(45, 60), ys + u(20, 35), u(18, 26), u(12, 18), -80, zg0 + 5),
            Prism(mu, s * u(20, 30), front - u(10, 14), u(18, 26), u(5, 8), zg1 - 10, 80),
        ]  # gluteus maximus, obturator internus, iliopsoas, adductors, rectus abdominis
    # levator ani: a sling around the rectum, below the base (outer muscle, inner fat)
    lx, ly, t = max(a + 6, r.rx + 10), r.ry + u(12, 18), u(3.0, 4.5)
    out += [
        Prism(mu, 0, r.y0, lx + t, ly + t, -80, cz + 5, 0, r.y0 + 0.6 * ly),
        Prism(Tissue.FAT, 0, r.y0, lx, ly, -80, cz + 5, 0, r.y0 + 0.6 * ly),
    ]
    for s in (-1, 1):
        bones = [  # ischium, pubic body (symphysis), superior pubic ramus, sacrum
            (s * xi, u(-25, -10), u(9, 13), u(24, 32), -60, 45, s * deg(-10, 10)),
            (s * u(15, 19), ys + u(8, 10), u(16, 20), u(8, 10), zg0 - 12, zg1 - 5, s * deg(20, 35)),
            (s * u(40, 50), ys + u(2, 8), u(26, 32), u(7, 9), zg1 - 5, zg1 + 25, -s * deg(15, 25)),
            (s * u(8, 12), r.y0 - r.ry - u(30, 40), u(10, 14), u(7, 9), zg1, 80, 0),
        ]
        for x, y, bx, by, z0, z1, ang in bones:
            out.append(Prism(Tissue.CORTEX, x, y, bx, by, z0, z1, ang))
            out.append(Prism(Tissue.MARROW, x, y, bx - 2.5, by - 2.5, z0, z1, ang))
        rad = u(4, 6)  # femoral vessels; neurovascular bundle
        out.append(Prism(Tissue.VESSEL, s * u(65, 80), ys + u(30, 40), rad, rad, -80, 80))
        out.append(
            Prism(
                Tissue.VESSEL, s * (a * 0.75 + 3), cy - 0.8 * b / (1 + g.flatten), 2, 2.5, zg0, zg1
            )
        )
        for _ in range(3):  # periprostatic venous plexus, anterolateral: slow flow, bright
            ang, rad = np.radians(u(25, 70)), u(1.5, 3.0)
            x, y = s * (a + 2) * np.sin(ang), cy + (b + 2) * np.cos(ang)
            z0, z1, rot = zg0 + u(0, 10), zg1 - u(0, 10), u(0, np.pi)
            out.append(Prism(Tissue.PLEXUS, x, y, rad, rad * u(1, 2), z0, z1, rot))
    for _ in range(14):  # small arteries and veins in the pelvic fat: flow voids
        z0, rad = u(-70, 40), u(1.0, 2.5)
        x, y, z1, rot = u(-60, 60), u(r.y0 - 25, ys), z0 + u(15, 60), u(0, np.pi)
        out.append(Prism(Tissue.VESSEL, x, y, rad, rad * u(1, 1.6), z0, z1, rot))
    return out


def _sample_solids(rng: np.random.Generator, g: Gland, xi: float) -> list[Ellipsoid]:
    """Femoral heads and necks, bladder, seminal vesicles (painted in this order)."""
    u = rng.uniform
    (_, cy, cz), (_, b, c) = g.center, g.axes
    out: list[Ellipsoid] = []
    for s in (-1, 1):
        rh, hz = u(22, 26), cz + u(5, 20)
        head = (s * (xi + rh + u(2, 8)), u(-10, 5), hz)
        neck = (head[0] + s * 35, head[1], hz - 20)
        rot = _rotation(0, 0, s * np.radians(u(30, 45)))
        out += [
            Ellipsoid(Tissue.CORTEX, head, (rh, rh, rh)),
            Ellipsoid(Tissue.MARROW, head, (rh - 2.5,) * 3),
            Ellipsoid(Tissue.CORTEX, neck, (35, 15, 15), rot),
            Ellipsoid(Tissue.MARROW, neck, (32, 12, 12), rot),
        ]
    # bladder above and anterior of the base; sometimes small and higher up
    bb = np.array([u(28, 40), u(22, 32), u(18, 28)]) * (0.6 + 0.6 * u(0, 1))
    bc = (u(-5, 5), cy + u(3, 12), cz + 0.75 * c + bb[2] + u(-2, 10))
    out += [
        Ellipsoid(Tissue.BLADDER_WALL, bc, tuple(float(v) for v in bb + u(2.5, 4.5))),
        Ellipsoid(Tissue.URINE, bc, tuple(float(v) for v in bb)),
    ]
    for s in (-1, 1):
        sv = (s * u(13, 20), cy - b / (1 + g.flatten) + u(-2, 4), cz + c + u(-2, 5))
        rot = _rotation(s * np.radians(u(15, 35)), np.radians(u(-25, 0)))
        out.append(Ellipsoid(Tissue.SEMINAL, sv, (u(16, 24), u(5, 8), u(7, 10)), rot))
    return out


def _sample_warp(rng: np.random.Generator) -> np.ndarray:
    """Four random plane waves per in-plane axis: wavelength 5-15 cm, amplitude 0.5-2 mm."""
    k = 2 * np.pi / rng.uniform(50, 150, (2, 4))
    d = rng.uniform(0, 2 * np.pi, (2, 4))
    phase, amp = rng.uniform(0, 2 * np.pi, (2, 4)), rng.uniform(0.5, 2.0, (2, 4))
    return np.stack([k * np.cos(d), k * np.sin(d), phase, amp], axis=2).astype(np.float32)
