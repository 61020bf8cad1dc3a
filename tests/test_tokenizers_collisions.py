"""Collision resolution: unique tuples, fewest items moved, cheapest moves."""

import numpy as np
import pytest

from llada_rec.tokenizers.collisions import collision_rate, count_collisions, quantization_error, resolve_collisions


def _distances_with_argmin(codes: np.ndarray, num_codes: int, rng: np.random.Generator) -> np.ndarray:
    """Random squared distances [N, M, K] in which each item's own codes are nearest."""
    distances = rng.uniform(1.0, 5.0, size=(*codes.shape, num_codes))
    np.put_along_axis(distances, codes[:, :, None], rng.uniform(0.0, 0.5, size=(*codes.shape, 1)), axis=2)
    return distances


def test_constructed_collisions_move_exactly_the_minimum():
    rng = np.random.default_rng(0)
    groups = {(1, 1): 3, (2, 3): 2, (5, 5): 4, (0, 0): 1, (7, 2): 1}
    codes = np.array([t for t, size in groups.items() for _ in range(size)])
    order = rng.permutation(len(codes))
    codes = codes[order]
    distances = _distances_with_argmin(codes, 8, rng)
    new, report = resolve_collisions(codes, distances)

    minimum = sum(size - 1 for size in groups.values())  # 6
    assert count_collisions(new) == 0 and report.collisions_after == 0
    assert report.collisions_before == minimum == report.items_moved
    assert report.colliding_items == 9
    moved = (new != codes).any(1)
    assert moved.sum() == minimum
    assert ((new != codes).sum(1)[moved] == 1).all()  # each moved on one head
    error = quantization_error(codes, distances)
    for tup, size in groups.items():
        members = np.where((codes == tup).all(1))[0]
        stayed = members[~moved[members]]
        assert len(stayed) == 1  # one keeps the tuple...
        assert error[stayed[0]] == error[members].min()  # ...the one closest to its codes
    assert report.quantization_error_after > report.quantization_error_before


def test_moves_to_the_cheapest_free_one_head_neighbour():
    distances = np.full((3, 2, 4), 10.0)
    distances[:, :, 0] = 0.0  # items 0 and 1 sit at (0, 0); item 0 is closer
    distances[0, :, 0] = -1.0
    distances[1, 1, 2] = 1.0  # item 1: cheapest move is head 1 -> code 2 ...
    distances[1, 0, 3] = 2.0  # ... then head 0 -> code 3
    codes = np.array([[0, 0], [0, 0], [3, 3]])
    new, _ = resolve_collisions(codes, distances)
    assert new[0].tolist() == [0, 0] and new[1].tolist() == [0, 2]

    codes_taken = np.array([[0, 0], [0, 0], [0, 2]])  # the cheapest target is already an item's
    new, report = resolve_collisions(codes_taken, distances)
    assert new[1].tolist() == [3, 0] and new[2].tolist() == [0, 2]
    assert report.items_moved == 1


def test_full_neighbourhood_falls_back_to_several_heads():
    codes = np.zeros((4, 2), dtype=np.int64)  # all four tuples of M=2, K=2 are needed
    distances = _distances_with_argmin(codes, 2, np.random.default_rng(1))
    new, report = resolve_collisions(codes, distances)
    assert sorted(map(tuple, new.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert report.items_moved == 3 and report.multi_head_moves == 1


def test_random_codes_end_unique_and_unique_items_never_move():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 8, size=(300, 3))
    distances = _distances_with_argmin(codes, 8, rng)
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    alone = counts[inverse.reshape(-1)] == 1
    new, report = resolve_collisions(codes, distances)
    assert len(np.unique(new, axis=0)) == 300
    assert report.items_moved == 300 - len(counts) == report.collisions_before
    assert (new[alone] == codes[alone]).all()
    assert collision_rate(codes) == pytest.approx(report.collisions_before / 300)


def test_no_collisions_is_a_no_op_and_bad_input_is_refused():
    codes = np.array([[0, 1], [1, 0]])
    distances = np.ones((2, 2, 3))
    new, report = resolve_collisions(codes, distances)
    assert (new == codes).all() and report.items_moved == 0
    with pytest.raises(ValueError, match="K\\^M"):
        resolve_collisions(np.zeros((5, 2), dtype=int), np.ones((5, 2, 2)))
    with pytest.raises(ValueError, match="\\[0, 3\\)"):
        resolve_collisions(np.array([[0, 3]]), np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="distances"):
        resolve_collisions(codes, np.ones((2, 3, 3)))


def test_distance_function_gives_the_same_codes_as_the_full_table():
    """Chunked resolution: only the movers' rows are asked for, and nothing changes."""
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 6, size=(200, 3))  # 216 tuples for 200 items: many movers, some fallbacks
    distances = _distances_with_argmin(codes, 6, rng).astype(np.float32)
    full, full_report = resolve_collisions(codes, distances)
    asked = []

    def rows_of(rows):
        asked.append(np.asarray(rows).copy())
        return distances[rows]

    chunked, report = resolve_collisions(codes, rows_of, errors=quantization_error(codes, distances), codebook_size=6)
    assert (chunked == full).all() and report == full_report
    assert full_report.multi_head_moves > 0 and count_collisions(chunked) == 0
    assert len(asked) == 1 and len(asked[0]) == full_report.items_moved < len(codes)
    with pytest.raises(ValueError, match="quantization errors"):
        resolve_collisions(codes, rows_of, codebook_size=6)
