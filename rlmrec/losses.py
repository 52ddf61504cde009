"""Loss pieces shared by every backbone and alignment (RLMREC.md section 5)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(anc: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """``mean_b softplus(s(u,j) - s(u,i))`` with ``s`` the dot product."""
    return F.softplus((anc * neg).sum(-1) - (anc * pos).sum(-1)).mean()


def l2_reg(params: Iterable[Tensor]) -> Tensor:
    """Sum of squared Frobenius norms of all given parameters (not batch-averaged)."""
    return torch.stack([p.square().sum() for p in params]).sum()


def _unit_rows(x: Tensor) -> Tensor:
    # The reference's normalization: eps inside the square root, not a clamp.
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + 1e-8)


def info_nce(a: Tensor, b: Tensor, pool: Tensor, temperature: float) -> Tensor:
    """``sum_rows [ -a.b/t + log sum_p exp(a.p/t) ]`` over L2-normalized rows.

    A SUM over rows: callers divide by the batch size, as the reference does. The
    log-sum-exp is the stable form; it equals the reference's direct
    ``log(sum(exp))`` to about 1e-6 and cannot overflow at small temperatures.
    """
    a, b, pool = _unit_rows(a), _unit_rows(b), _unit_rows(pool)
    positive = (a * b).sum(-1) / temperature
    return (torch.logsumexp(a @ pool.T / temperature, dim=-1) - positive).sum()


def reconstruction_contrast(x: Tensor, y: Tensor, temperature: float) -> Tensor:
    """The generative alignment's contrast, exactly as the reference writes it:
    ``mean_rows -log( exp(x.y/t) / (sum_{y'} exp(x.y'/t) + 1e-8) + 1e-8 )``.

    The 1e-8 terms are kept (they change the value when a row is near-perfect),
    so this is computed in the reference's direct form rather than as a logsumexp.
    """
    x, y = F.normalize(x), F.normalize(y)
    logits = x @ y.T / temperature
    numerator = torch.exp((x * y).sum(-1) / temperature)
    denominator = torch.exp(logits).sum(-1)
    return -torch.log(numerator / (denominator + 1e-8) + 1e-8).mean()
