"""The concat (additive) attention score in cache-sized blocks, with a hand-written backward.

Why it exists: ``vᵀ tanh(W₁ s_t + W₂ h_s)`` has a (B, T, S, A) intermediate, hundreds of MB for a training batch
and tens of MB per beam-search step. Written as plain tensor ops, it is allocated twice per call (the sum, then its
tanh, which autograd keeps) and the backward makes three more tensors that size. Allocations that large come fresh
from the OS and are zero-filled page by page, and PyTorch's CPU tanh is slow: on a 2-core EPYC, adding into a
fresh tensor took 35 ms where adding into an existing one took 4.5 ms, and tanh took 7× as long as a sigmoid
(docs/history/benchmarks.md). Here the score runs over blocks of at most ``BLOCK_ELEMENTS`` elements in one reused buffer,
through the sigmoid (tanh x = 2σ(2x) − 1), and the backward recomputes each block instead of keeping the 4-D tensor.

Equations, with q = W₁ s (B, T, A), k = W₂ h (B, S, A), σ[b,t,s,:] = σ(2 q[b,t,:] + 2 k[b,s,:]), so u = tanh(q + k)
= 2σ − 1::

    score[b,t,s]  = Σ_a v_a u[b,t,s,a]  = 2 Σ_a v_a σ[b,t,s,a] − Σ_a v_a
    d[b,t,s,a]    = g[b,t,s] v_a (1 − u²) = 4 g[b,t,s] v_a σ (1 − σ)        (g = ∂L/∂score)
    ∂L/∂q[b,t,:]  = Σ_s d[b,t,s,:]      ∂L/∂k[b,s,:] = Σ_t d[b,t,s,:]      ∂L/∂v = Σ_{b,t,s} g (2σ − 1)

Computed in at least fp32 whatever the input dtype (a bf16 sigmoid would cost 2⁻⁸ of absolute error in u), with
``torch.mv``, which CPU autocast leaves alone.

Invariant: a block is a set of whole sentences (rows of b) or, when one sentence is too large, a range of its
target steps; every score depends only on its own (b, t, s), so blocks are independent and their order is free.
"""
from typing import List, Tuple

import torch
from torch import Tensor

#: elements of the (rows, steps, S, A) block buffer (4 MiB in fp32): the fastest of 2¹⁵…2²⁰ on a 2-core EPYC
#: (smaller blocks pay the fixed cost of each op more often)
BLOCK_ELEMENTS = 1 << 20


def score_blocks(batch: int, steps: int, per_step: int, block_elements: int) -> List[Tuple[int, int, int, int]]:
    """(row start, row end, step start, step end) of each block; ``per_step`` = S · A elements per (b, t)."""
    steps_per_block = max(1, block_elements // max(1, per_step))
    blocks: List[Tuple[int, int, int, int]] = []
    if steps_per_block >= steps:  # whole sentences per block
        rows_per_block = max(1, steps_per_block // max(1, steps))
        for row in range(0, batch, rows_per_block):
            blocks.append((row, min(batch, row + rows_per_block), 0, steps))
    else:  # one sentence at a time, a range of its steps per block
        for row in range(batch):
            for step in range(0, steps, steps_per_block):
                blocks.append((row, row + 1, step, min(steps, step + steps_per_block)))
    return blocks


def _sigmoid_block(queries2: Tensor, keys: Tensor, buffer: Tensor, block: Tuple[int, int, int, int]) -> Tensor:
    """σ(2q + 2k) of one block, in (a prefix of) ``buffer``: (rows, steps, S, A); ``queries2`` = 2q."""
    row0, row1, step0, step1 = block
    block_q = queries2[row0:row1, step0:step1].unsqueeze(2)  # (rows, steps, 1, A)
    block_k = keys[row0:row1].unsqueeze(1)  # (rows, 1, S, A)
    sigma = buffer[: row1 - row0, : step1 - step0]  # (rows, steps, S, A)
    torch.add(block_q, block_k, alpha=2, out=sigma)  # (rows, steps, S, A): 2q + 2k, in the buffer's dtype
    return sigma.sigmoid_()  # (rows, steps, S, A)


def _prepare(queries: Tensor, keys: Tensor, v: Tensor, block_elements: int) -> Tuple[Tensor, Tensor, List[Tuple[int, int, int, int]], Tensor]:
    """2q and v in the compute dtype (at least fp32), and the block plan with its buffer (keys stay as they are:
    in beam search they are the large tensor, and the block's add reads them once)."""
    dtype = torch.promote_types(queries.dtype, torch.float32)
    queries2 = queries.to(dtype) * 2  # (B, T, A)
    batch, steps, width = queries.shape
    blocks = score_blocks(batch, steps, keys.size(1) * width, block_elements)
    rows, block_steps = 0, 0
    for row0, row1, step0, step1 in blocks:
        rows, block_steps = max(rows, row1 - row0), max(block_steps, step1 - step0)
    buffer = queries2.new_empty(rows, block_steps, keys.size(1), width)  # (rows, steps, S, A)
    return queries2, v.to(dtype), blocks, buffer


def concat_scores(queries: Tensor, keys: Tensor, v: Tensor, block_elements: int = BLOCK_ELEMENTS) -> Tensor:
    """score[b,t,s] = Σ_a v_a tanh(q[b,t,a] + k[b,s,a]) for ``queries`` (B, T, A), ``keys`` (B, S, A), ``v`` (A,);
    in at least fp32. Forward only (no graph): what inference runs; TorchScript compiles it."""
    queries2, v, blocks, buffer = _prepare(queries, keys, v, block_elements)
    batch, steps, width = queries.shape
    scores = queries2.new_empty(batch, steps, keys.size(1))  # (B, T, S)
    v_sum = v.sum()  # Σ_a v_a
    for block in blocks:
        sigma = _sigmoid_block(queries2, keys, buffer, block)  # (rows, steps, S, A)
        block_scores = torch.mv(sigma.reshape(-1, width), v).mul_(2).sub_(v_sum)  # (rows·steps·S,)
        scores[block[0] : block[1], block[2] : block[3]] = block_scores.view(sigma.shape[:3])  # (rows, steps, S)
    return scores


class ConcatScore(torch.autograd.Function):
    """``concat_scores`` with the backward of the module docstring, block by block (σ recomputed)."""

    @staticmethod
    def forward(ctx, queries: Tensor, keys: Tensor, v: Tensor, block_elements: int = BLOCK_ELEMENTS) -> Tensor:
        ctx.save_for_backward(queries, keys, v)
        ctx.block_elements = block_elements
        return concat_scores(queries, keys, v, block_elements)

    @staticmethod
    def backward(ctx, grad_scores: Tensor):
        queries, keys, v = ctx.saved_tensors
        queries2, v_compute, blocks, buffer = _prepare(queries, keys, v, ctx.block_elements)
        width = queries.size(2)
        grad_scores = grad_scores.to(queries2.dtype).contiguous()  # (B, T, S)
        grad_queries = torch.zeros_like(queries2)  # (B, T, A)
        grad_keys = torch.zeros_like(keys, dtype=queries2.dtype)  # (B, S, A)
        grad_v = torch.zeros_like(v_compute)  # (A,)
        minus_4v = v_compute * -4  # (A,)
        for block in blocks:
            row0, row1, step0, step1 = block
            sigma = _sigmoid_block(queries2, keys, buffer, block)  # (rows, steps, S, A)
            block_grad = grad_scores[row0:row1, step0:step1]  # (rows, steps, S)
            flat_grad = block_grad.reshape(-1)  # (rows·steps·S,)
            # Σ g (2σ − 1)
            grad_v += torch.mv(sigma.reshape(-1, width).t(), flat_grad).mul_(2).sub_(flat_grad.sum())  # (A,)
            # (σ − ½)² − ¼ = −σ(1 − σ), then d = −4 v g · that
            sigma.sub_(0.5).square_().sub_(0.25).mul_(minus_4v).mul_(block_grad.unsqueeze(-1))  # (rows, steps, S, A)
            grad_queries[row0:row1, step0:step1] = sigma.sum(2)  # (rows, steps, A)
            grad_keys[row0:row1] += sigma.sum(1)  # (rows, S, A)
        return grad_queries.to(queries.dtype), grad_keys.to(keys.dtype), grad_v.to(v.dtype), None
