"""The keys of a training item and of a collated batch, defined once.

:class:`crossdistill.data.dataset.SliceDataset` yields dict items under these keys (and
:class:`crossdistill.engine.cached_teacher.TeacherCachedDataset` adds one); the training
loop, the teacher cache and the controls read batches by them. PyTorch's default collation
stacks tensors and numbers along a new dimension 0 and gathers strings into lists, so a
batch of ``N`` items has the same keys with the shapes given below.
"""

from __future__ import annotations

from typing import Final


class BatchKeys:
    """Keys of an item (and of a collated batch) of the slice datasets.

    ``S`` is the cache's slice size, ``C`` the network's input channels (1, or 3 for 2.5D).

    Attributes:
        IMAGE: float32 ``(C, S, S)`` z-scored slice(s); batch ``(N, C, S, S)``.
        MASK: int64 ``(S, S)`` in {0, 1}; batch ``(N, S, S)``.
        SITE: the item's site folder, ``str``; batch ``list[str]``.
        CASE: the item's case id, ``str``; batch ``list[str]``.
        SLICE: the slice's index in its volume, ``int``; batch int64 ``(N,)``.
        THETA: float32 ``(2, 3)`` geometric map of the item's augmentation, present only
            when the dataset augments; batch ``(N, 2, 3)``.
        TEACHER: the teacher's stored maps ``{tap: float16 tensor}`` (logits ``(K, S, S)``,
            features ``(C_tap, h, w)``), present only in a teacher-cached dataset; batch
            ``{tap: (N, ...)}``.
    """

    IMAGE: Final = "image"
    MASK: Final = "mask"
    SITE: Final = "site"
    CASE: Final = "case"
    SLICE: Final = "slice"
    THETA: Final = "theta"
    TEACHER: Final = "teacher"
