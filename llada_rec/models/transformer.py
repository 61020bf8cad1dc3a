"""Pre-norm Transformer blocks shared by the sequence models (LLaDA-Rec, SASRec, TIGER).

Attention runs through ``F.scaled_dot_product_attention`` with one boolean mask
(True = may attend) that carries both the structure (bidirectional, causal, ...) and the
padding, so every model expresses its attention pattern the same way.

Two block kinds (``block``):
- ``"gpt"``: LayerNorm, GELU MLP, biases in every Linear (GPT-2 / nanoGPT);
- ``"llama"``: RMSNorm without bias, SwiGLU MLP, no bias in any Linear (the LLaDA-Rec
  authors' backbone, SPEC §4b).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, get_args

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

BlockKind = Literal["gpt", "llama"]
BLOCK_KINDS: tuple[str, ...] = get_args(BlockKind)


@dataclass(frozen=True)
class TransformerConfig:
    """The sizes of a Transformer network (``TransformerEncoder``); LLaDA-Rec's by default.

    Args:
        d_model: width of every token state.
        num_layers: Transformer blocks.
        num_attention_heads: attention heads per block (must divide d_model).
        ffn_ratio: MLP hidden size / d_model.
        dropout: on the embeddings and every residual branch, in [0, 1).
        block: "gpt" (LayerNorm, GELU, biases) or "llama" (RMSNorm, SwiGLU, no biases).
    """

    d_model: int = 256
    num_layers: int = 4
    num_attention_heads: int = 8
    ffn_ratio: int = 4
    dropout: float = 0.1
    block: BlockKind = "gpt"

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.block not in BLOCK_KINDS:
            raise ValueError(f"block must be one of {BLOCK_KINDS}, got {self.block!r}")


def attention_mask(padding_mask: Tensor, structure: Optional[Tensor] = None) -> Tensor:
    """Boolean attention mask [B, 1, S, S] (True = query may attend to key).

    padding_mask: [B, S] bool, True at padding tokens; they are never attended to.
    structure: [S, S] bool (query, key) pattern, e.g. causal; None = everything visible.
    A padding query would see nothing, which makes softmax NaN; it attends to itself
    instead (its output is meaningless and ignored by the callers).
    """
    batch_size, seq_len = padding_mask.shape
    allowed = ~padding_mask[:, None, None, :]  # [B, 1, 1, S]
    if structure is not None:
        if structure.shape != (seq_len, seq_len):
            raise ValueError(f"structure mask has shape {tuple(structure.shape)}, expected ({seq_len}, {seq_len})")
        allowed = allowed & structure.to(device=padding_mask.device, dtype=torch.bool)
    allowed = allowed.expand(batch_size, 1, seq_len, seq_len)
    eye = torch.eye(seq_len, dtype=torch.bool, device=padding_mask.device)
    return allowed | (eye & padding_mask[:, None, :, None])


class SelfAttention(nn.Module):
    """Multi-head self-attention; the mask decides who sees whom.

    Dropout acts on the output (residual branch), not on the attention probabilities:
    probability dropout forces SDPA's unfused kernel, 4x slower per layer on a CPU.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float, bias: bool = True) -> None:
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Optional[Tensor], num_queries: Optional[int] = None, rows: Optional[Tensor] = None) -> Tensor:
        """x [B, S, D] -> [B, Q, D] for the last Q = ``num_queries`` positions (all if None);
        mask None: every token sees every token.  ``rows`` [N]: indices into the flattened
        [B * Q] outputs; the output projection runs only there -> [N, D]."""
        batch_size, seq_len, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=-1)  # each [B, S, D]
        if num_queries is not None:
            q = q[:, -num_queries:]
            mask = None if mask is None else mask[..., -num_queries:, :]
        # [B, S, D] -> [B, H, S, D/H]
        q, k, v = (t.reshape(batch_size, -1, self.num_heads, d_model // self.num_heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(batch_size, -1, d_model)
        if rows is not None:
            y = y.reshape(-1, d_model).index_select(0, rows)
        return self.resid_dropout(self.proj(y))

    def split_heads(self, t: Tensor) -> Tensor:
        """[B, S, D] -> [B, H, S, D/H]."""
        batch_size, seq_len, d_model = t.shape
        return t.reshape(batch_size, seq_len, self.num_heads, d_model // self.num_heads).transpose(1, 2)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of (normalised) tokens x [B, S, D]: two [B, H, S, D/H]."""
        _, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.split_heads(k), self.split_heads(v)

    def forward_cached(self, x: Tensor, prefix_keys: Tensor, prefix_values: Tensor, queries: Optional[Tensor] = None) -> Tensor:
        """New tokens x [G, b, Q, D] (G groups of b rows) attend to their group's cached
        prefix keys/values [G, H, P, D/H] and to their own row's Q tokens -> [G, b, Q, D];
        ``queries`` [G, b, n]: only those tokens' outputs -> [G, b, n, D]."""
        groups, rows, num_tokens, d_model = x.shape
        q, k, v = (t.reshape(groups, rows, num_tokens, self.num_heads, -1).transpose(2, 3) for t in self.qkv(x).split(d_model, dim=-1))
        if queries is not None:
            q = q.gather(3, queries[:, :, None, :, None].expand(-1, -1, self.num_heads, -1, q.shape[-1]))
        y = attend_with_prefix(q, k, v, prefix_keys, prefix_values)  # [G, b, H, n, D/H]
        return self.resid_dropout(self.proj(y.transpose(2, 3).reshape(groups, rows, q.shape[3], d_model)))


def attend_with_prefix(q: Tensor, k: Tensor, v: Tensor, prefix_keys: Tensor, prefix_values: Tensor) -> Tensor:
    """Softmax attention of q over [prefix ; own keys], the prefix shared by a group's rows.

    q [G, b, H, n, E], k, v [G, b, H, Q, E]; prefix_keys, prefix_values [G, H, P, E] ->
    [G, b, H, n, E].
    The prefix is never copied per row: one batched matmul per group scores all b rows'
    queries against it.  Probabilities in float32.
    """
    groups, rows, heads, num_queries, dim = q.shape
    prefix = prefix_keys.shape[2]
    scale = dim**-0.5
    grouped = q.permute(0, 2, 1, 3, 4).reshape(groups, heads, rows * num_queries, dim)
    prefix_scores = (grouped @ prefix_keys.transpose(-1, -2)).view(groups, heads, rows, num_queries, prefix)
    own_scores = q @ k.transpose(-1, -2)  # [G, b, H, Q, Q]
    scores = torch.cat([prefix_scores.permute(0, 2, 1, 3, 4), own_scores], dim=-1).float() * scale
    probs = torch.softmax(scores, dim=-1).to(q.dtype)
    prefix_probs, own_probs = probs.split([prefix, k.shape[3]], dim=-1)
    prefix_probs = prefix_probs.permute(0, 2, 1, 3, 4).reshape(groups, heads, rows * num_queries, prefix)
    from_prefix = (prefix_probs @ prefix_values).view(groups, heads, rows, num_queries, dim).permute(0, 2, 1, 3, 4)
    return from_prefix + own_probs @ v


class FeedForward(nn.Module):
    """GELU MLP with hidden size ffn_ratio * d_model."""

    def __init__(self, d_model: int, ffn_ratio: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, ffn_ratio * d_model)
        self.proj = nn.Linear(ffn_ratio * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class SwiGLU(nn.Module):
    """SwiGLU MLP without biases: proj(silu(gate(x)) * up(x)), hidden size ffn_ratio * d_model."""

    def __init__(self, d_model: int, ffn_ratio: int, dropout: float) -> None:
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * ffn_ratio * d_model, bias=False)  # gate and up in one GEMM
        self.proj = nn.Linear(ffn_ratio * d_model, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.dropout(self.proj(F.silu(gate) * up))


class _RMSNormFunction(torch.autograd.Function):
    """x / sqrt(mean(x^2) + eps) * weight with a hand-written backward: on a CPU
    ``F.rms_norm`` runs as about ten element-wise kernels forward and backward, this as six."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:
        inverse_rms = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(x.shape[-1]).add_(eps).rsqrt_()
        normed = x * inverse_rms
        ctx.save_for_backward(normed, inverse_rms, weight)
        return normed * weight

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        normed, inverse_rms, weight = ctx.saved_tensors
        grad_normed = grad * weight
        dot = torch.linalg.vecdot(grad_normed, normed).unsqueeze(-1).div_(normed.shape[-1])
        grad_x = torch.addcmul(grad_normed, normed, dot, value=-1).mul_(inverse_rms)
        return grad_x, (grad * normed).reshape(-1, normed.shape[-1]).sum(0), None


class RMSNorm(nn.RMSNorm):
    """``nn.RMSNorm`` (same parameter, same eps default, same values to float tolerance)
    computed by :class:`_RMSNormFunction`."""

    def forward(self, x: Tensor) -> Tensor:
        eps = self.eps if self.eps is not None else torch.finfo(x.dtype).eps
        return _RMSNormFunction.apply(x, self.weight, eps)


def norm_layer(d_model: int, block: str) -> nn.Module:
    """The block kind's normalisation: LayerNorm (gpt) or RMSNorm without bias (llama)."""
    return RMSNorm(d_model) if block == "llama" else nn.LayerNorm(d_model)


class TransformerLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)); ``block`` picks the kind."""

    def __init__(self, d_model: int, num_heads: int, ffn_ratio: int, dropout: float, block: BlockKind = "gpt") -> None:
        super().__init__()
        if block not in BLOCK_KINDS:
            raise ValueError(f"block must be one of {BLOCK_KINDS}, got {block!r}")
        self.ln_attn = norm_layer(d_model, block)
        self.attn = SelfAttention(d_model, num_heads, dropout, bias=block == "gpt")
        self.ln_ffn = norm_layer(d_model, block)
        self.ffn = (SwiGLU if block == "llama" else FeedForward)(d_model, ffn_ratio, dropout)

    def forward(self, x: Tensor, mask: Tensor, num_queries: Optional[int] = None, rows: Optional[Tensor] = None) -> Tensor:
        """Outputs for the last ``num_queries`` positions only (all if None); ``rows`` [N]:
        only those of the flattened [B * Q] outputs, [N, D] (keys and values still from all)."""
        attended = self.attn(self.ln_attn(x), mask, num_queries, rows)
        x = x if num_queries is None else x[:, -num_queries:]
        x = (x if rows is None else x.reshape(-1, x.shape[-1]).index_select(0, rows)) + attended
        return x + self.ffn(self.ln_ffn(x))

    def forward_cached(self, x: Tensor, prefix_keys: Tensor, prefix_values: Tensor, queries: Optional[Tensor] = None) -> Tensor:
        """The block for new tokens x [G, b, Q, D] over cached keys/values (see SelfAttention);
        ``queries`` [G, b, n]: only those tokens' outputs [G, b, n, D]."""
        attended = self.attn.forward_cached(self.ln_attn(x), prefix_keys, prefix_values, queries)
        if queries is not None:
            x = x.gather(2, queries[..., None].expand(-1, -1, -1, x.shape[-1]))
        x = x + attended
        return x + self.ffn(self.ln_ffn(x))


class TransformerEncoder(nn.Module):
    """A stack of pre-norm layers with a final norm, sized by a :class:`TransformerConfig`.

    forward(x [B, S, D], mask [B or 1, 1, S, S] bool) -> [B, S, D]; build the mask with
    :func:`attention_mask`.
    """

    def __init__(self, config: TransformerConfig = TransformerConfig()) -> None:
        super().__init__()
        c = config
        self.layers = nn.ModuleList(
            TransformerLayer(c.d_model, c.num_attention_heads, c.ffn_ratio, c.dropout, c.block) for _ in range(c.num_layers)
        )
        self.ln_final = norm_layer(c.d_model, c.block)

    def forward(self, x: Tensor, mask: Tensor, num_outputs: Optional[int] = None, rows: Optional[Tensor] = None) -> Tensor:
        """``num_outputs``: return only the last positions' states [B, num_outputs, D]; the
        last layer then computes just those queries (the other outputs are never read).
        ``rows`` [N]: only these of the flattened [B * num_outputs] (or [B * S]) states,
        [N, D]; the last layer's projection and MLP and the final norm run only there."""
        for i, layer in enumerate(self.layers):
            last = i == len(self.layers) - 1
            x = layer(x, mask, num_outputs if last else None, rows if last else None)
        if not self.layers:
            x = x if num_outputs is None else x[:, -num_outputs:]
            x = x if rows is None else x.reshape(-1, x.shape[-1]).index_select(0, rows)
        return self.ln_final(x)

    def key_value_cache(self, x: Tensor, mask: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every layer's keys and values [B, H, S, D/H] of tokens x [B, S, D] that attend
        only among themselves under mask [B, 1, S, S]: the prefix a later
        :meth:`forward_cached` call attends to (its states never depend on what follows)."""
        cache = []
        for i, layer in enumerate(self.layers):
            normed = layer.ln_attn(x)
            cache.append(layer.attn.keys_values(normed))
            if i < len(self.layers) - 1:  # the last layer's outputs at the prefix are never read
                x = x + layer.attn(normed, mask)
                x = x + layer.ffn(layer.ln_ffn(x))
        return cache

    def forward_cached(self, x: Tensor, cache: list[tuple[Tensor, Tensor]], queries: Optional[Tensor] = None) -> Tensor:
        """New tokens x [G, b, Q, D] (G groups of b rows) through every layer, each row
        attending to its group's cached prefix (``cache`` from :meth:`key_value_cache`, one
        [G, H, P, D/H] pair per layer, no padding) and to its own tokens -> final-norm states;
        ``queries`` [G, b, n]: the last layer computes only those tokens' states [G, b, n, D]."""
        for i, (layer, (keys, values)) in enumerate(zip(self.layers, cache)):
            x = layer.forward_cached(x, keys, values, queries if i == len(self.layers) - 1 else None)
        return self.ln_final(x)
