"""Tests of the constrained adaptive-order diffusion beam search against slow references.

The "models" are hash tables: the log-probabilities of a row are a fixed pseudo-random
function of (user, partial target) computed with exact integer arithmetic, so they depend on
what is filled and are identical whether a row is scored alone or in a batch.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from llada_rec.decoding import (
    MASKED,
    BeamSearchResult,
    ItemCodeIndex,
    diffusion_beam_search,
    merge_duplicate_beams,
)
from llada_rec.decoding.beam_search import _expand, _has_duplicates

PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64


# -- tiny data and models ---------------------------------------------------------------
def random_item_codes(num_items: int, num_heads: int, codebook_size: int, seed: int) -> torch.Tensor:
    """[N, M] unique random tuples; for K > 8 the codes come from a pool of 3 spread-out codes
    per head, so that items still share partial tuples."""
    generator = torch.Generator().manual_seed(seed)
    pool = torch.arange(codebook_size)
    if codebook_size > 8:
        pool = torch.tensor([0, codebook_size // 2, codebook_size - 1])
    total = len(pool) ** num_heads
    assert num_items <= total
    flat = torch.randperm(total, generator=generator)[:num_items]
    digits = [pool[(flat // len(pool) ** m) % len(pool)] for m in range(num_heads)]
    return torch.stack(digits, dim=1)


def hash_log_prob_fn(num_heads: int, codebook_size: int, seed: int, scale: float = 4.0):
    """log_prob_fn(rows, target) -> [R, M, K]: a random table indexed by (user, partial tuple)."""

    def log_prob_fn(rows: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        state = (rows.long() * 1_000_003 + seed * 7919 + 17) % PRIME  # [R]
        for head in range(num_heads):
            state = (state * 48271 + target[:, head].long() + 2) % PRIME
        cell = torch.arange(num_heads * codebook_size).view(1, num_heads, codebook_size)
        value = (state[:, None, None] * 69621 + cell * 40692 + 12345) % PRIME
        for _ in range(3):
            value = (value * value + 11) % PRIME
            value = (value * 48271 + (value >> 7)) % PRIME
        logits = scale * (value % (1 << 20)).numpy() / (1 << 20)  # float64, per-row exact
        top = logits.max(axis=-1, keepdims=True)
        log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
        return torch.from_numpy(log_probs.astype(np.float32))

    return log_prob_fn


# -- slow, obviously-correct references ---------------------------------------------------
def brute_allowed(items: list[tuple[int, ...]], partial: tuple[int, ...], position: int) -> set[int]:
    return {
        item[position]
        for item in items
        if all(code == MASKED or code == item[h] for h, code in enumerate(partial))
    }


@dataclass
class RefBeam:
    codes: tuple[int, ...]
    score: np.float32  # float32 sums, as in the fast search (numpy scalars: fast in loops)
    log_probs: np.ndarray | None = None  # [M, K] float32 of this step's forward pass
    selected: list[int] | None = None


def reference_search(log_prob_fn, num_users, item_codes, codebook_size, beam_size, num_steps,
                     top_k, order, constrained):
    """Plain loops over users, beams, positions and codes; every candidate enumerated."""
    items = [tuple(row) for row in item_codes.tolist()]
    num_heads = len(items[0])
    per_step = num_heads // num_steps
    results = []
    for user in range(num_users):

        def allowed(codes, position):
            if not constrained:
                return range(codebook_size)
            return sorted(brute_allowed(items, codes, position))

        beams = [RefBeam((MASKED,) * num_heads, np.float32(0.0))]
        for _ in range(num_steps):
            for beam in beams:
                target = torch.tensor([beam.codes])
                beam.log_probs = log_prob_fn(torch.tensor([user]), target)[0].numpy()
                masked = [m for m in range(num_heads) if beam.codes[m] == MASKED]
                if order == "adaptive":
                    confidence = {m: max(float(beam.log_probs[m, c]) for c in allowed(beam.codes, m))
                                  for m in masked}
                    ranked = sorted(masked, key=lambda m: (-confidence[m], m))
                else:
                    ranked = sorted(masked, reverse=order == "right_to_left")
                beam.selected = ranked[:per_step]
            for j in range(per_step):
                children: dict[tuple[int, ...], RefBeam] = {}
                for beam in beams:
                    position = beam.selected[j]
                    for code in allowed(beam.codes, position):
                        score = beam.score + beam.log_probs[position, code]
                        if score == float("-inf"):
                            continue
                        codes = beam.codes[:position] + (code,) + beam.codes[position + 1:]
                        if codes not in children or score > children[codes].score:
                            children[codes] = RefBeam(codes, score, beam.log_probs, beam.selected)
                beams = sorted(children.values(), key=lambda b: -float(b.score))[:beam_size]
        results.append([(b.codes, float(b.score), items.index(b.codes) + 1 if b.codes in items else 0)
                        for b in beams[:top_k]])
    return results


def assert_same_as_reference(result: BeamSearchResult, reference, top_k: int) -> None:
    for user, expected in enumerate(reference):
        found = len(expected)
        assert result.codes[user, :found].tolist() == [list(codes) for codes, _, _ in expected]
        assert result.items[user, :found].tolist() == [item for _, _, item in expected]
        torch.testing.assert_close(result.log_probs[user, :found],
                                   torch.tensor([score for _, score, _ in expected]),
                                   rtol=1e-6, atol=1e-6)
        assert (result.items[user, found:] == 0).all()
        assert (result.codes[user, found:] == MASKED).all()
        assert torch.isneginf(result.log_probs[user, found:]).all()
    assert result.codes.shape[1] == top_k


# -- ItemCodeIndex ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "num_heads,codebook_size,num_items",
    [(1, 5, 4), (2, 3, 7), (3, 4, 30), (4, 3, 50), (5, 2, 20), (8, 1024, 300)],
)
def test_allowed_codes_equal_brute_force(num_heads, codebook_size, num_items):
    item_codes = random_item_codes(num_items, num_heads, codebook_size, seed=num_heads)
    index = ItemCodeIndex(item_codes)
    items = [tuple(row) for row in item_codes.tolist()]
    generator = torch.Generator().manual_seed(1)
    rows = 300
    from_items = item_codes[torch.randint(num_items, (rows,), generator=generator)]
    from_noise = torch.randint(index.codebook_size, (rows, num_heads), generator=generator)
    partial = torch.cat([from_items, from_noise])
    partial[torch.rand(partial.shape, generator=generator) < 0.5] = MASKED
    partial[:5] = MASKED  # fully masked rows
    position = torch.randint(num_heads, (partial.shape[0],), generator=generator)

    allowed = index.allowed_codes(partial, position)

    assert allowed.shape == (partial.shape[0], index.codebook_size)
    for row in range(partial.shape[0]):
        expected = brute_allowed(items, tuple(partial[row].tolist()), int(position[row]))
        assert set(allowed[row].nonzero().flatten().tolist()) == expected, row


def test_lookup_maps_tuples_to_items_and_others_to_zero():
    item_codes = random_item_codes(40, 3, 5, seed=3)
    index = ItemCodeIndex(item_codes, codebook_size=6)
    items = {tuple(row): i + 1 for i, row in enumerate(item_codes.tolist())}
    every_tuple = torch.tensor(list(itertools.product(range(6), repeat=3)))
    expected = torch.tensor([items.get(tuple(row), 0) for row in every_tuple.tolist()])
    assert torch.equal(index.lookup(every_tuple), expected)
    partly_masked = item_codes[:4].clone()
    partly_masked[:, 1] = MASKED
    assert (index.lookup(partly_masked) == 0).all()
    assert torch.equal(index.to("cpu").lookup(item_codes), torch.arange(1, 41))


def test_index_rejects_bad_tables_and_queries():
    codes = random_item_codes(6, 2, 4, seed=0)
    duplicated = torch.cat([codes, codes[1:2]])
    with pytest.raises(ValueError, match=r"items 2 and 7 share"):
        ItemCodeIndex(duplicated)
    negative = codes.clone()
    negative[3, 1] = -2
    with pytest.raises(ValueError, match=r"item_codes\[3, 1\] \(item 4\)"):
        ItemCodeIndex(negative)
    with pytest.raises(ValueError, match="codebook_size"):
        ItemCodeIndex(codes, codebook_size=2)
    with pytest.raises(ValueError, match="expected"):
        ItemCodeIndex(codes[:, 0])
    index = ItemCodeIndex(codes)
    bad_partial = torch.full((2, 2), MASKED)
    bad_partial[1, 0] = 4
    with pytest.raises(ValueError, match=r"partial\[1, 0\] = 4"):
        index.allowed_codes(bad_partial, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="positions"):
        index.allowed_codes(torch.full((1, 2), MASKED), torch.tensor([2]))


# -- beam search against the reference ---------------------------------------------------
SHAPES = {2: (5, 12), 3: (4, 20), 4: (3, 30)}  # M -> (K, N)


@pytest.mark.parametrize(
    "num_heads,num_steps", [(2, 1), (2, 2), (3, 1), (3, 3), (4, 1), (4, 2), (4, 4)]
)
@pytest.mark.parametrize("beam_size", [1, 3, 50])
@pytest.mark.parametrize("constrained", [True, False])
@pytest.mark.parametrize("order", ["adaptive", "left_to_right", "right_to_left"])
def test_search_matches_reference(num_heads, num_steps, beam_size, constrained, order):
    codebook_size, num_items = SHAPES[num_heads]
    seed = num_heads * 100 + num_steps * 10 + beam_size
    item_codes = random_item_codes(num_items, num_heads, codebook_size, seed=seed)
    index = ItemCodeIndex(item_codes, codebook_size=codebook_size)
    log_prob_fn = hash_log_prob_fn(num_heads, codebook_size, seed=seed)
    top_k = 6

    result = diffusion_beam_search(log_prob_fn, 3, index, beam_size=beam_size, num_steps=num_steps,
                                   top_k=top_k, order=order, constrained=constrained)
    reference = reference_search(log_prob_fn, 3, item_codes, codebook_size, beam_size, num_steps,
                                 top_k, order, constrained)

    assert_same_as_reference(result, reference, top_k)


def test_constrained_results_are_distinct_items_sorted_by_score():
    item_codes = random_item_codes(200, 4, 8, seed=5)
    index = ItemCodeIndex(item_codes)
    log_prob_fn = hash_log_prob_fn(4, 8, seed=5)
    result = diffusion_beam_search(log_prob_fn, 5, index, beam_size=12, num_steps=2, top_k=10)
    assert (result.items > 0).all()
    assert torch.equal(item_codes[result.items - 1], result.codes)
    for user_items in result.items.tolist():
        assert len(set(user_items)) == len(user_items)
    assert (result.log_probs[:, :-1] >= result.log_probs[:, 1:]).all()
    assert result.log_probs.dtype == torch.float32

    unconstrained = diffusion_beam_search(log_prob_fn, 5, index, beam_size=12, num_steps=2,
                                          top_k=10, constrained=False)
    assert torch.equal(unconstrained.items, index.lookup(unconstrained.codes))
    assert (unconstrained.items == 0).any()  # 200 items of 4096 tuples: most beams are no item
    # Constraints can only lower the best score: they remove hypotheses.
    assert (unconstrained.log_probs[:, 0] >= result.log_probs[:, 0]).all()


def test_pads_when_fewer_items_than_top_k():
    item_codes = torch.tensor([[0, 1], [2, 2], [1, 0]])
    index = ItemCodeIndex(item_codes, codebook_size=3)
    result = diffusion_beam_search(hash_log_prob_fn(2, 3, seed=1), 2, index, beam_size=10,
                                   num_steps=2, top_k=5)
    assert sorted(result.items[:, :3].flatten().tolist()) == [1, 1, 2, 2, 3, 3]
    assert (result.items[:, 3:] == 0).all() and torch.isneginf(result.log_probs[:, 3:]).all()
    assert (result.codes[:, 3:] == MASKED).all() and torch.isfinite(result.log_probs[:, :3]).all()
    # The three items' probabilities under the model sum to at most 1.
    assert (result.log_probs[:, :3].exp().sum(dim=1) <= 1 + 1e-5).all()


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_greedy_equals_beam_one(num_steps):
    num_heads, codebook_size = 4, 4
    item_codes = random_item_codes(60, num_heads, codebook_size, seed=num_steps)
    items = [tuple(row) for row in item_codes.tolist()]
    index = ItemCodeIndex(item_codes)
    log_prob_fn = hash_log_prob_fn(num_heads, codebook_size, seed=num_steps)
    result = diffusion_beam_search(log_prob_fn, 4, index, beam_size=1, num_steps=num_steps, top_k=3)
    for user in range(4):
        codes, score = [MASKED] * num_heads, 0.0
        for _ in range(num_steps):
            log_probs = log_prob_fn(torch.tensor([user]), torch.tensor([codes]))[0]
            best = {m: max(brute_allowed(items, tuple(codes), m), key=lambda c: float(log_probs[m, c]))
                    for m in range(num_heads) if codes[m] == MASKED}
            chosen = sorted(best, key=lambda m: -float(log_probs[m, best[m]]))[: num_heads // num_steps]
            for position in chosen:  # most confident first; later ones re-checked for validity
                code = max(brute_allowed(items, tuple(codes), position),
                           key=lambda c: float(log_probs[position, c]))
                codes[position] = code
                score += float(log_probs[position, code])
        assert result.codes[user, 0].tolist() == codes
        assert result.items[user, 0] == items.index(tuple(codes)) + 1
        assert math.isclose(float(result.log_probs[user, 0]), score, rel_tol=1e-5)
        assert (result.items[user, 1:] == 0).all()


# -- duplicates and parent bookkeeping ---------------------------------------------------
def test_merge_keeps_best_of_each_partial_tuple_per_user():
    codes = torch.tensor([
        [[0, 1, MASKED], [0, 1, MASKED], [2, 1, MASKED], [0, MASKED, 1], [2, 1, MASKED]],
        [[0, 1, MASKED], [1, 1, MASKED], [1, 1, MASKED], [1, MASKED, 1], [0, MASKED, 1]],
    ])
    # user 0: (0,1,_) reached by two fill orders (-1.0, -0.5); (2,1,_) twice with a tie.
    scores = torch.tensor([[-1.0, -0.5, -0.7, -0.2, -0.7], [-3.0, -0.1, -0.4, -0.3, float("-inf")]])
    merged = merge_duplicate_beams(codes, scores)
    inf = float("-inf")
    expected = torch.tensor([[inf, -0.5, -0.7, -0.2, inf], [-3.0, -0.1, inf, -0.3, inf]])
    assert torch.equal(merged, expected)


@pytest.mark.parametrize("codebook_size", [4, 2**20])  # packed int64 keys / pairwise compare
def test_duplicate_check_sees_only_live_repeats(codebook_size):
    codes = torch.tensor([[[0, 1, MASKED, 3], [0, MASKED, 1, 3], [0, 1, MASKED, 3]]])
    live = torch.tensor([[-1.0, -2.0, -3.0]])
    assert _has_duplicates(codes, live, codebook_size)
    assert not _has_duplicates(codes, torch.tensor([[-1.0, -2.0, float("-inf")]]), codebook_size)
    assert not _has_duplicates(codes[:, :2], live[:, :2], codebook_size)


def test_expand_merges_two_fill_orders_reaching_one_tuple():
    # Beam A filled head 0 and fills head 1 next; beam B filled head 1 and fills head 0 next.
    codes = torch.tensor([[[0, MASKED, MASKED], [MASKED, 1, MASKED]]])  # [U=1, b=2, M=3]
    scores = torch.tensor([[math.log(0.5), math.log(0.6)]])
    step_log_probs = torch.tensor([[[[0.2, 0.8], [0.5, 0.5]], [[0.7, 0.3], [0.1, 0.9]]]]).log()
    selected = torch.tensor([[[1, 2], [0, 2]]])  # [1, 2, n=2]: the j-th position of each beam
    index = ItemCodeIndex(torch.tensor([[0, 0, 0], [0, 1, 0], [1, 1, 1]]))
    new_codes, new_scores, new_log_probs, new_selected = _expand(
        codes, scores, step_log_probs, selected, 0, index, beam_size=2, constrained=False
    )
    # (0, 1, _) is reached with 0.5 * 0.8 = 0.40 (from A) and 0.6 * 0.7 = 0.42 (from B): keep B's.
    assert new_codes[0].tolist() == [[0, 1, MASKED], [1, 1, MASKED]]
    torch.testing.assert_close(new_scores.exp(), torch.tensor([[0.42, 0.18]]))
    assert new_selected[0].tolist() == [[0, 2], [0, 2]]  # both kept beams descend from B
    assert torch.equal(new_log_probs[0], step_log_probs[0, [1, 1]])


def test_later_fills_in_a_step_use_the_kept_beams_parent_log_probs():
    """T < M: after the slots are reshuffled, the 2nd fill must read the parent's rows."""

    def log_prob_fn(rows, target):
        probs = torch.full((target.shape[0], 4, 2), 0.5)
        root = (target == MASKED).all(dim=1)
        first = target[:, 0] == 0
        probs[root, 0] = torch.tensor([0.6, 0.4])
        probs[root, 1] = torch.tensor([0.9, 0.1])
        probs[~root & first, 2] = torch.tensor([0.6, 0.4])
        probs[~root & first, 3] = torch.tensor([0.99, 0.01])
        probs[~root & ~first, 2] = torch.tensor([0.99, 0.01])
        probs[~root & ~first, 3] = torch.tensor([0.2, 0.8])
        return probs.log()

    index = ItemCodeIndex(torch.tensor(list(itertools.product(range(2), repeat=4))))
    for constrained in (True, False):
        result = diffusion_beam_search(log_prob_fn, 1, index, beam_size=2, num_steps=2, top_k=2,
                                       order="left_to_right", constrained=constrained)
        # After head 2, beam (1,0,0) outranks (0,0,0): their slots swap before head 3 is filled.
        assert result.codes[0].tolist() == [[0, 0, 0, 0], [1, 0, 0, 1]]
        torch.testing.assert_close(result.log_probs[0].exp(),
                                   torch.tensor([0.6 * 0.9 * 0.6 * 0.99, 0.4 * 0.9 * 0.99 * 0.8]))


def test_search_rejects_bad_arguments():
    index = ItemCodeIndex(random_item_codes(10, 4, 3, seed=0))
    log_prob_fn = hash_log_prob_fn(4, 3, seed=0)
    with pytest.raises(ValueError, match="divisor"):
        diffusion_beam_search(log_prob_fn, 2, index, beam_size=2, num_steps=3, top_k=2)
    with pytest.raises(ValueError, match="order"):
        diffusion_beam_search(log_prob_fn, 2, index, beam_size=2, num_steps=2, top_k=2, order="random")
    with pytest.raises(ValueError, match="log_prob_fn returned shape"):
        diffusion_beam_search(lambda rows, target: log_prob_fn(rows, target)[:, :2], 2, index,
                              beam_size=2, num_steps=2, top_k=2)
    empty = diffusion_beam_search(log_prob_fn, 0, index, beam_size=2, num_steps=2, top_k=3)
    assert empty.items.shape == (0, 3) and empty.codes.shape == (0, 3, 4)
