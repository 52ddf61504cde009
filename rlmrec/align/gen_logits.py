"""Gen's reconstruction contrast fused with the MLP's last (linear) layer.

The definition is the plain form (docs/protocol.md §8)::

    linear_reconstruction_contrast(h, W, b, y, t)
        == reconstruction_contrast(F.linear(h, W, b), y, t, y_normalized=True)

with ``h`` the MLP's hidden activations (``n x H``), ``W`` (``D x H``) and ``b`` its
last layer, and ``y`` the unit-row profile targets (``n x D``, constant). Because the
targets are constant and the layer is linear, every logit can be formed in the hidden
space instead of the profile space (``x_i = W h_i + b``)::

    x_i . y_k = h_i . z_k + s_k,   z_k = W^T y_k,  s_k = b . y_k   (Z = Y W once per call)
    |x_i|^2   = h_i . (W^T W) h_i + 2 h_i . W^T b + |b|^2

so the ``n x n`` products run over ``H`` instead of ``D`` columns. The catch is the
gradient: ``W`` and ``b`` are parameters, so it flows through ``Z`` and ``s`` as well
as through ``h``, and the backward pass needs two ``n x n x H`` products (``A Z`` for
``h``, ``A^T h`` for ``Z``) where the plain path needs one ``n x n x D`` (its targets
need no gradient). Per call, in multiply-adds (lower-order terms left out):

    plain:  2 n^2 D + 3 n D H                          (logits, dL/dx; layer fwd + bwd)
    hidden: 3 n^2 H + 2 n D H + 2 D H^2 + 2 n H^2      (logits, dL/dh, dL/dZ; Z, dL/dW;
                                                        the Gram W^T W; the norm terms)

With ``D ~ 2H`` the hidden path wins only for ``n`` above about ``2H`` (about 1,640 for
``D = 1536, H = 784``), and by at most ``2D / 3H ~ 1.3x`` as ``n`` grows. So the path is
chosen per call by that count (:func:`choose_path`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rlmrec import gemm
from rlmrec.losses import recon_row_factor, reconstruction_contrast, rows_per_block

GenPath = Literal["auto", "plain", "hidden"]  # "auto": the cheaper of the other two


def path_flops(n: int, d_out: int, d_hidden: int, need_h: bool, need_w: bool) -> tuple[int, int]:
    """Multiply-adds of the (plain, hidden) path for ``n`` rows, forward plus what the
    backward needs (``need_h``: dL/dh; ``need_w``: dL/dW and dL/db). Matrix-vector
    products (the bias) are left out: they are ``1/H`` of the rest."""
    d, hid = d_out, d_hidden
    grad = need_h or need_w
    plain = n * d * hid + n * n * d  # x = W h + b; the logits
    plain += n * n * d if grad else 0  # dL/dx: softmax-weighted sums of the targets
    plain += n * d * hid * (int(need_h) + int(need_w))  # dL/dh = dL/dx W; dL/dW = dL/dx^T h
    hidden = n * d * hid + d * hid * hid + n * hid * hid + n * n * hid  # Z, Gram, norms, logits
    hidden += n * n * hid if grad else 0  # softmax-weighted sums of Z (dL/dh, the norm term)
    hidden += (n * n * hid + n * d * hid + n * hid * hid + d * hid * hid) if need_w else 0  # dL/dZ, dL/dW
    return plain, hidden


def choose_path(n: int, d_out: int, d_hidden: int, need_h: bool, need_w: bool) -> Literal["plain", "hidden"]:
    """The path with fewer multiply-adds (the plain one on a tie)."""
    plain, hidden = path_flops(n, d_out, d_hidden, need_h, need_w)
    return "hidden" if hidden < plain else "plain"


def linear_reconstruction_contrast(
    h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, temperature: float, path: GenPath = "auto"
) -> Tensor:
    """``reconstruction_contrast(F.linear(h, weight, bias), y, temperature, y_normalized=True)``.

    ``y`` must have unit rows. ``path="auto"`` computes it in whichever space costs fewer
    multiply-adds (module docstring); both give the same value and gradients to
    rounding. Targets that need a gradient always take the plain path.
    """
    grad = torch.is_grad_enabled()
    need_h = grad and h.requires_grad
    need_w = grad and (weight.requires_grad or (bias is not None and bias.requires_grad))
    if path == "auto":
        path = choose_path(h.shape[0], weight.shape[0], weight.shape[1], need_h, need_w)
    if path == "plain" or (grad and y.requires_grad):
        return reconstruction_contrast(F.linear(h, weight, bias), y, temperature, y_normalized=True)
    if not (need_h or need_w):
        return _blocked_hidden(h, weight, bias, y, temperature, need_h=False, need_w=False)[0]
    out: Tensor = _LinearReconstructionContrast.apply(h, weight, bias, y, temperature)
    return out


def _blocked_hidden(
    h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, t: float, need_h: bool, need_w: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Loss, dL/dh, dL/dW and dL/db in the hidden space.

    The plain gradient (``losses._blocked_recon``) is, with u_i = x_i / |x_i|,
    w_ik = exp(u_i.y_k / t), den_i = sum_k w_ik, g_i and c_i = g_i / (t (den_i + 1e-8)):
        dL/dx_i = a_i y_i - e_i sum_k w_ik y_k + beta_i x_i
    where a_i = g_i / (t |x_i|), e_i = c_i / |x_i| and beta_i = -(u_i . dL/du_i) / |x_i|^2
    (0 for a clamped norm). With z_k = W^T y_k and s_k = b . y_k every piece of it has
    a hidden-space form:
        x_i . y_k            = h_i . z_k + s_k
        W^T sum_k w_ik y_k   = sum_k w_ik z_k            (one n x n x H product)
        W^T x_i              = (W^T W) h_i + W^T b = q_i (also gives the norm)
    so dL/dh_i = a_i z_i - e_i sum_k w_ik z_k + beta_i q_i, and with X = h W^T + b:
        dL/dW = sum_i dL/dx_i h_i^T = Y^T dL/dZ + W (h^T diag(beta) h) + b (beta^T h)
        dL/db = sum_i dL/dx_i       = Y^T dL/ds + W (h^T beta) + b sum(beta)
        dL/dZ = diag(a) h - w^T diag(e) h                (the second n x n x H product)
        dL/ds = a - w^T e
    """
    h, weight, y = h.detach(), weight.detach(), y.detach()
    n = h.shape[0]
    # The bias is kept apart rather than appended to h as a unit fixed at 1: an odd
    # width (H + 1) makes the big products markedly slower in CPU BLAS.
    b = bias.detach() if bias is not None else h.new_zeros(weight.shape[0])
    z = gemm.mm(y, weight)  # z_k = W^T y_k: the targets in hidden space
    s = y @ b  # s_k = b . y_k
    wb = weight.T @ b
    q = gemm.linear(h, (weight.T @ weight).T, wb)  # q_i = W^T x_i
    # |x_i|^2 = h_i.W^T W h_i + 2 h_i.W^T b + |b|^2; rounding can take it a hair below 0.
    norm = ((q * h).sum(1) + h @ wb + b @ b).clamp_min_(0.0).sqrt_()
    clamped = norm < 1e-12  # F.normalize's clamp: the norm's Jacobian drops out there
    inv_norm = 1.0 / norm.clamp_min(1e-12)
    own = (h * z).sum(1) + s  # x_i . y_i: the numerator's row-wise product
    numerator = torch.exp(own * inv_norm / t)
    denominator = torch.empty(n, device=h.device, dtype=h.dtype)
    grad_h = torch.empty_like(h) if need_h else h.new_empty(0)
    grad_z = torch.zeros_like(z) if need_w else h.new_empty(0)
    grad_s = torch.zeros_like(s) if need_w else h.new_empty(0)
    alpha = torch.empty_like(s) if need_w else h.new_empty(0)
    beta = torch.empty_like(s) if need_w else h.new_empty(0)
    step = rows_per_block(n, h.device)
    base = gemm.exp_scale(h)
    for start in range(0, n, step):
        e = slice(start, start + step)
        inv = inv_norm[e]
        weights = gemm.exp_(gemm.linear(h[e], z, s).mul_((inv / (t / base)).unsqueeze(1)))
        den = weights.sum(dim=1)
        denominator[e] = den
        if not (need_h or need_w):
            continue
        g = recon_row_factor(numerator[e], den, n)
        c = g / (t * (den + 1e-8))
        wz = gemm.mm(weights, z)
        ws = weights @ s
        a_e = inv * g / t
        e_e = inv * c
        # u_i . dL/du_i = ((g_i / t) x_i.y_i - c_i x_i.sum_k w_ik y_k) / |x_i|
        radial = inv * ((g / t) * own[e] - c * ((h[e] * wz).sum(1) + ws))
        b_e = torch.where(clamped[e], torch.zeros_like(radial), -radial * inv * inv)
        if need_h:
            grad_h[e] = z[e] * a_e.unsqueeze(1) - wz * e_e.unsqueeze(1) + q[e] * b_e.unsqueeze(1)
        if need_w:
            gemm.add_mm_(grad_z, weights.T, h[e] * e_e.unsqueeze(1), alpha=-1.0)
            grad_s.addmv_(weights.T, e_e, alpha=-1.0)
            alpha[e] = a_e
            beta[e] = b_e
    loss = -torch.log(numerator / (denominator + 1e-8) + 1e-8).mean()
    grad_w = grad_b = h.new_empty(0)
    if need_w:
        grad_z.add_(h * alpha.unsqueeze(1))
        grad_s.add_(alpha)
        beta_h = h.T @ beta
        # Sums over rows (A^T B with a long inner dimension) stay on torch.mm: see rlmrec.gemm.
        grad_w = torch.addmm(gemm.mm(weight, h.T @ (h * beta.unsqueeze(1))), y.T, grad_z).addr_(b, beta_h)
        grad_b = torch.addmv(weight @ beta_h, y.T, grad_s).add_(b * beta.sum())  # no host sync
    return loss, grad_h, grad_w, grad_b


class _LinearReconstructionContrast(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None, y: Tensor, temperature: float) -> Tensor:
        need_h = ctx.needs_input_grad[0]
        need_w = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        loss, grad_h, grad_w, grad_b = _blocked_hidden(h, weight, bias, y, temperature, need_h, need_w)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.need = tuple(ctx.needs_input_grad[:3])
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None, None]:
        grads = ctx.saved_tensors
        out = [g * grad if need else None for g, need in zip(grads, ctx.need, strict=True)]
        return out[0], out[1], out[2], None, None
