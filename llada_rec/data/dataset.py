"""From raw interactions to leave-one-out sequence samples (SPEC §1), as column operations.

Item indices are 1-based everywhere after preprocessing: index 0 is the padding item, and
row ``i - 1`` of any per-item table (``item_ids``, embeddings, semantic-ID codes) belongs to
item ``i``.  User indices are 0-based.

Readers hand over three columns (polars); :func:`preprocess` turns the ids into integer codes
once and does deduplication, time order, the repeats rule and the iterated k-core on integer
arrays.  Item metadata is read only after the k-core filter, for the surviving items (why:
``docs/DECISIONS.md``, "A columnar data pipeline").
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Optional, Protocol, Sequence, Union

import numpy as np
import polars as pl

from llada_rec.data.samples import Samples, leave_one_out
from llada_rec.utils import UserError

log = logging.getLogger(__name__)

PAD_ITEM = 0
ItemMeta = dict[str, dict[str, Any]]


class DataError(UserError, ValueError):
    """Bad or unusable input data; the message names the file, line or field."""


class MetaSource(Protocol):
    """Item metadata read on demand: the records of ``wanted`` items, only ``fields`` of
    them (all when None); skipped records are counted into ``skipped``."""

    def read(self, wanted: set[str], fields: Optional[Sequence[str]], skipped: Counter) -> ItemMeta: ...


class RawInteractions:
    """What every reader returns: parallel interaction columns plus item metadata.

    ``timestamps`` orders each user's items; readers of formats without time (LC-Rec json)
    give the position in the user's list.  ``skipped`` counts rows a reader dropped, by reason.
    ``item_meta`` is given as a dict ``{item: record}`` or as a :class:`MetaSource` that
    ``preprocess`` reads for the items that survive the filters only; the ``item_meta``
    attribute reads such a source for every item (once).
    """

    def __init__(
        self,
        users: Union[Sequence[str], pl.Series],
        items: Union[Sequence[str], pl.Series],
        timestamps: Union[Sequence[float], pl.Series],
        item_meta: Union[ItemMeta, MetaSource, None] = None,
        source: str = "",
        skipped: Optional[Counter] = None,
    ) -> None:
        if not (len(users) == len(items) == len(timestamps)):
            raise DataError(f"{source}: users, items and timestamps differ in length")
        self.users = pl.Series("user", users, dtype=pl.String)
        self.items = pl.Series("item", items, dtype=pl.String)
        self.timestamps = pl.Series("timestamp", timestamps, dtype=pl.Float64)
        self.meta: Union[ItemMeta, MetaSource] = {} if item_meta is None else item_meta
        self.source = source
        self.skipped = Counter() if skipped is None else skipped

    @property
    def frame(self) -> pl.DataFrame:
        return pl.DataFrame([self.users, self.items, self.timestamps])

    @property
    def item_meta(self) -> ItemMeta:
        """Whole metadata records of every item with an interaction (read once)."""
        if not isinstance(self.meta, dict):
            self.meta = self.meta.read(set(self.items.unique().to_list()), None, self.skipped)
        return self.meta

    def meta_for(self, item_ids: Sequence[str], fields: Optional[Sequence[str]], skipped: Counter) -> ItemMeta:
        if isinstance(self.meta, dict):
            return self.meta
        return self.meta.read(set(item_ids), fields, skipped)


class SequenceData:
    """Filtered, time-ordered user sequences with the maps back to the original ids.

    The sequences are one flat array of item indices (``items``, users one after another,
    each oldest first) cut by ``offsets`` (user ``u``: ``items[offsets[u]:offsets[u + 1]]``);
    ``sequences`` gives them as lists.
    """

    def __init__(
        self,
        user_ids: list[str],
        item_ids: list[str],
        sequences: Optional[Sequence[Sequence[int]]] = None,
        item_meta: Optional[list[dict[str, Any]]] = None,
        skipped: Optional[Counter] = None,
        *,
        items: Optional[np.ndarray] = None,
        offsets: Optional[np.ndarray] = None,
    ) -> None:
        if sequences is not None:
            lengths = np.array([len(s) for s in sequences], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            items = np.fromiter((i for s in sequences for i in s), dtype=np.int32, count=int(offsets[-1]))
        if items is None or offsets is None or len(offsets) != len(user_ids) + 1:
            raise ValueError("SequenceData needs sequences, or items and offsets (one more than users)")
        self.user_ids = user_ids  # user index -> original user id
        self.item_ids = item_ids  # item index i (1..N) -> item_ids[i - 1]
        self.items = np.asarray(items, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.item_meta = item_meta if item_meta is not None else [{} for _ in item_ids]  # aligned with item_ids
        self.skipped = skipped if skipped is not None else Counter()

    @property
    def sequences(self) -> list[list[int]]:
        """Per user, item indices, oldest first."""
        return [part.tolist() for part in np.split(self.items, self.offsets[1:-1])]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return int(self.offsets[-1])

    def stats(self) -> dict[str, float]:
        """The figures of the paper's Table 2."""
        n = self.num_interactions
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": n,
            "sparsity": 1.0 - n / max(1, self.num_users * self.num_items),
            "avg_length": n / max(1, self.num_users),
        }

    def train_items(self) -> np.ndarray:
        """Sorted indices of items that occur in some user's training part."""
        position = np.arange(len(self.items)) - np.repeat(self.offsets[:-1], self.lengths)
        in_train = position < np.repeat(self.lengths - 2, self.lengths)
        return np.unique(self.items[in_train]).astype(np.int64)

    def samples(self, stage: str, max_history: int) -> Samples:
        """(user, history, target) rows of a split (see :func:`~llada_rec.data.samples.leave_one_out`)."""
        return leave_one_out(self.items, self.offsets, stage, max_history)


def _codes(column: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """(sorted distinct ids, each row's index among them) of a string column."""
    distinct = column.unique().sort()
    return distinct, column.cast(pl.Enum(distinct)).to_physical().to_numpy()


def _kcore(users: np.ndarray, items: np.ndarray, item_threshold: int, user_threshold: int) -> np.ndarray:
    """Rows kept by the iterated k-core: items with ``item_threshold`` rows and users with
    ``user_threshold`` rows, peeled until nothing changes (a boolean mask)."""
    kept = np.arange(len(users))
    while True:
        u, i = users[kept], items[kept]
        ok = np.bincount(i)[i] >= item_threshold
        ok &= np.bincount(u, weights=ok, minlength=int(u.max(initial=0)) + 1)[u] >= user_threshold
        if ok.all():
            break
        kept = kept[ok]
    mask = np.zeros(len(users), dtype=bool)
    mask[kept] = True
    return mask


def _time_order(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray, repeats: str, skipped: Counter) -> np.ndarray:
    """Row indices by user, then time, ties in read order, without exact duplicates (same
    user, item and time; the first read is kept) and, for ``repeats="first"``, without a
    user's later interactions with an item; both counted."""
    pair = users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items
    by_pair = _arg_sort(pair, timestamps)
    same_pair = np.zeros(len(pair), dtype=bool)
    same_pair[1:] = pair[by_pair[1:]] == pair[by_pair[:-1]]
    duplicate = same_pair.copy()
    duplicate[1:] &= timestamps[by_pair[1:]] == timestamps[by_pair[:-1]]
    del pair
    if duplicate.any():
        skipped["duplicate interaction"] += int(duplicate.sum())
    drop = duplicate
    if repeats == "first":
        drop = same_pair  # every row of a pair after its earliest (duplicates included)
        if (same_pair & ~duplicate).any():
            skipped["repeat interaction (earliest kept)"] += int((same_pair & ~duplicate).sum())
    kept = np.sort(by_pair[~drop])  # back to read order
    return kept[_arg_sort(users[kept], timestamps[kept])]


def _arg_sort(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row order by ``first``, then ``second``, equal keys in row order (polars' stable
    multi-key sort: several times faster than ``np.lexsort``)."""
    frame = pl.DataFrame({"first": first, "second": second})
    return frame.select(pl.arg_sort_by("first", "second", maintain_order=True)).to_series().to_numpy()


def _renumber(codes: np.ndarray, ids: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Codes of the surviving ids renumbered 0.. in the same (sorted) order, and those ids."""
    present = np.bincount(codes, minlength=len(ids)) > 0
    new_code = np.cumsum(present) - 1
    return new_code[codes], ids.filter(pl.Series(present)).to_list()


def preprocess(
    raw: RawInteractions,
    kcore: int = 5,
    min_length: int = 3,
    repeats: str = "first",
    meta_fields: Optional[Sequence[str]] = None,
) -> SequenceData:
    """Deduplicate, order by time (stable for ties), k-core filter to a fixed point.

    ``repeats``: ``"first"`` keeps only a user's earliest interaction with an item (as the
    official Amazon 2023 5-core files do), ``"keep"`` keeps repeat interactions at other
    times; exact duplicates (same user, item and time) are always dropped.  Items need
    ``kcore`` interactions, users ``max(kcore, min_length)`` (leave-one-out needs 3); the
    filter iterates until nothing changes.  Metadata is then read for the items left, only
    ``meta_fields`` of it (all fields when None); items missing from it keep empty metadata
    and are counted.
    """
    if repeats not in ("first", "keep"):
        raise ValueError(f"repeats must be 'first' or 'keep', got {repeats!r}")
    skipped = Counter(raw.skipped)
    all_users, users = _codes(raw.users)
    all_items, items = _codes(raw.items)
    order = _time_order(users, items, raw.timestamps.to_numpy(), repeats, skipped)
    users, items = users[order], items[order]
    del order
    item_threshold, user_threshold = max(kcore, 0), max(kcore, min_length)
    kept = _kcore(users, items, item_threshold, user_threshold)
    users, user_ids = _renumber(users[kept], all_users)
    items, item_ids = _renumber(items[kept], all_items)
    if len(user_ids) < len(all_users):
        skipped[f"user with fewer than {user_threshold} items after filtering"] += len(all_users) - len(user_ids)
    if not user_ids:
        raise DataError(
            f"{raw.source}: no user is left after filtering (kcore={kcore}, "
            f"min_length={min_length}); lower --data.dataset.kcore or check the input"
        )
    offsets = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=len(user_ids)))])
    meta = raw.meta_for(item_ids, meta_fields, skipped)
    missing = [it for it in item_ids if it not in meta]
    if missing:
        skipped["item without metadata (kept, empty text)"] += len(missing)
        log.warning(
            "%s: %d items have no metadata (e.g. %s); they keep an empty text",
            raw.source, len(missing), missing[:3],
        )
    return SequenceData(
        user_ids=user_ids,
        item_ids=item_ids,
        items=items + 1,
        offsets=offsets,
        item_meta=[meta.get(it, {}) for it in item_ids],
        skipped=skipped,
    )
