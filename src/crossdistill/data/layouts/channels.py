"""Which channel of an nnU-Net or Decathlon dataset is the T2-weighted image.

By name, from ``dataset.json``: the one channel whose name, lower-cased and without
spaces, ``-``, ``_`` or ``.``, is ``t2``, ``t2w``, ``t2wi`` or ``t2weighted`` (``T2``,
``t2``, ``T2W``, ``T2-weighted``; not ``T2*`` or ``T2 FLAIR``). A dataset with a single
channel of another name uses it. ``--channel NAME_OR_INDEX`` overrides the
choice: a name (case-insensitive) or an index listed in ``dataset.json``. No T2 channel,
several, or an override that ``dataset.json`` does not list: an :class:`InputError` naming
``dataset.json`` and its channels.
"""

from __future__ import annotations

import re

from crossdistill.data.layouts.dataset_folder import DatasetFolder
from crossdistill.errors import InputError

T2_NAMES = frozenset({"t2", "t2w", "t2wi", "t2weighted"})


def is_t2_name(name: str) -> bool:
    """True for the usual spellings of a T2-weighted channel (see the module)."""
    return re.sub(r"[\s_.\-]", "", name.lower()) in T2_NAMES


def choose_channel(dataset: DatasetFolder, wanted: str | int | None) -> tuple[int, str]:
    """``(channel index, why it was chosen)`` of the T2 image of ``dataset``.

    Args:
        dataset: the dataset and its channels.
        wanted: ``--channel``, a channel name or index; ``None`` chooses T2 by name.

    Raises:
        InputError: naming ``dataset.json``, when no channel (or several) fits.
    """
    channels = dataset.channels
    listing = ", ".join(f"{i} '{n}'" for i, n in channels.items())
    if wanted is not None:
        return _override(dataset, str(wanted).strip(), listing), "--channel"
    t2 = [i for i, n in channels.items() if is_t2_name(n)]
    if len(t2) == 1:
        return t2[0], "named T2 in dataset.json"
    if not t2 and len(channels) == 1:
        return next(iter(channels)), "the only channel in dataset.json"
    what = "no T2 channel" if not t2 else "several T2 channels"
    raise InputError(
        dataset.json_path, f"names {what} (channels {listing}); choose one with --channel"
    )


def _override(dataset: DatasetFolder, text: str, listing: str) -> int:
    channels = dataset.channels
    if text.isascii() and text.isdigit():
        if int(text) in channels:
            return int(text)
        raise InputError(dataset.json_path, f"has no channel {text} (channels {listing})")
    matches = [i for i, n in channels.items() if n.lower() == text.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(
            dataset.json_path, f"has no channel named '{text[:40]}' (channels {listing})"
        )
    raise InputError(
        dataset.json_path, f"names several channels '{text}' (channels {listing}); give an index"
    )
