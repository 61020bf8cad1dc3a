"""Training and evaluation samples as integer arrays: (user, history, target) rows that
point into one flat array of item indices instead of holding a list each.

A row's history is ``items[starts[r]:ends[r]]`` (oldest first); ``targets[r]`` is the item to
predict (0 when unknown, for prediction).  A 5M-sample split is then five int arrays
(~100 MB) rather than five million tuples of lists (~1.5 GB).
"""

from __future__ import annotations

from typing import Iterator, Sequence, Union

import numpy as np


class Samples:
    """(user, history, target) rows over a flat item array; indexing gives
    ``(user, history list, target)`` as the tuple-based samples did."""

    def __init__(self, items: np.ndarray, users: np.ndarray, starts: np.ndarray, ends: np.ndarray, targets: np.ndarray) -> None:
        if not (len(users) == len(starts) == len(ends) == len(targets)):
            raise ValueError("users, starts, ends and targets must have one entry per sample")
        self.items = items
        self.users = np.asarray(users, dtype=np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)
        self.targets = np.asarray(targets, dtype=np.int64)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, Sequence[int], int]]) -> "Samples":
        """From (user, history, target) tuples."""
        lengths = np.array([len(h) for _, h, _ in rows], dtype=np.int64)
        ends = np.cumsum(lengths)
        items = np.fromiter((i for _, h, _ in rows for i in h), dtype=np.int64, count=int(ends[-1]) if len(ends) else 0)
        users = np.array([u for u, _, _ in rows], dtype=np.int64)
        targets = np.array([t for _, _, t in rows], dtype=np.int64)
        return cls(items, users, ends - lengths, ends, targets)

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, index: int) -> tuple[int, list[int], int]:
        return int(self.users[index]), self.items[self.starts[index] : self.ends[index]].tolist(), int(self.targets[index])

    def __iter__(self) -> Iterator[tuple[int, list[int], int]]:
        return (self[r] for r in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Samples):
            other = list(other)
        return isinstance(other, list) and list(self) == other

    @property
    def history_lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def subset(self, rows: Union[np.ndarray, Sequence[int]]) -> "Samples":
        rows = np.asarray(rows, dtype=np.int64)
        return Samples(self.items, self.users[rows], self.starts[rows], self.ends[rows], self.targets[rows])


def leave_one_out(items: np.ndarray, offsets: np.ndarray, stage: str, max_history: int) -> Samples:
    """The samples of a split of the sequences ``items[offsets[u]:offsets[u + 1]]``.

    ``train``: every prefix of the training part (all but the last two items; target = item
    j >= 1, history = the items before it); ``val``: target = second-last item; ``test``:
    target = last item.  Histories keep their last ``max_history`` items.  Rows are by user,
    then by target position.
    """
    lengths = np.diff(offsets)
    first = offsets[:-1]
    if stage == "train":
        per_user = np.maximum(lengths - 3, 0)  # targets at positions 1 .. length - 3
        users = np.repeat(np.arange(len(lengths)), per_user)
        position = np.arange(int(per_user.sum())) - np.repeat(np.cumsum(per_user) - per_user, per_user) + 1
        ends = first[users] + position
    elif stage in ("val", "test"):
        users = np.arange(len(lengths))
        ends = first + lengths - (2 if stage == "val" else 1)
    else:
        raise ValueError(f"unknown split {stage!r}; expected train, val or test")
    starts = np.maximum(first[users], ends - max_history)
    return Samples(items, users, starts, ends, items[ends])
