"""One Adam/AdamW step that leaves frozen coordinates exactly as they were.

:meth:`PathwayModel.step` must leave every coordinate outside the active masks untouched: the
weight, Adam's first and second moments, and decoupled weight decay. The generic way (save the
frozen values, run ``optimizer.step()``, write them back) gathers and scatters every frozen
coordinate of three tensors per parameter. For ``torch.optim.Adam`` and ``torch.optim.AdamW``
this module does the update itself instead, with the frozen coordinates masked out of each
elementwise operation: the same arithmetic as torch's single-tensor Adam (``foreach=False``, the
CPU default), no gather/scatter, and the optimizer's state stays in torch's format
(``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints and later plain steps are unaffected.

At a frozen coordinate the step is exact: ``exp_avg.lerp_(target, w)`` with
``target = exp_avg`` there adds ``w * 0``; the weight update is masked to 0 before it is
subtracted. On the CPU, with finite gradients, the masks select through ``lerp`` with weights 0 and 1,
which gives either operand (the same values, signed zeros aside) several times faster than
``torch.where``; on other devices, or when a masked parameter's gradient holds an inf or NaN (one
check per step), ``torch.where`` and ``masked_fill_`` select, so a frozen coordinate stays intact
whatever the gradient. Parameters without frozen coordinates (biases, norms, matrices fully inside the
union) take torch's own sequence of operations.

>>> import torch
>>> p = torch.nn.Parameter(torch.ones(2, 2)); p.grad = torch.ones(2, 2)
>>> opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.1)
>>> frozen = torch.tensor([[True, False], [False, False]])
>>> masked_adam_step(opt, {p: frozen})
>>> p[0, 0].item(), round(p[0, 1].item(), 4)
(1.0, 0.89)
"""

from __future__ import annotations

from typing import Mapping

import torch

__all__ = ["supports_masked_adam", "masked_adam_step"]


def supports_masked_adam(optimizer: torch.optim.Optimizer) -> bool:
    """True when ``optimizer`` is a plain ``Adam``/``AdamW`` whose options this step reproduces
    (no amsgrad, maximize, capturable, differentiable, fused; float learning rates; dense
    real-valued gradients)."""
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return False
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:
        return False  # hooks expect optimizer.step() itself
    for group in optimizer.param_groups:
        if group.get("amsgrad") or group.get("maximize") or group.get("capturable"):
            return False
        if group.get("differentiable") or group.get("fused"):
            return False
        if any(isinstance(group.get(k), torch.Tensor) for k in ("lr", "weight_decay", "eps")):
            return False
        if any(isinstance(b, torch.Tensor) for b in group["betas"]):
            return False
        for p in group["params"]:
            if p.grad is not None and (p.grad.is_sparse or torch.is_complex(p)):
                return False
    return True


def _decoupled(optimizer: torch.optim.Optimizer, group: dict) -> bool:
    if "decoupled_weight_decay" in group:
        return bool(group["decoupled_weight_decay"])
    return isinstance(optimizer, torch.optim.AdamW)


@torch.no_grad()
def masked_adam_step(optimizer: torch.optim.Optimizer, frozen: Mapping[torch.Tensor, torch.Tensor]) -> None:
    """Run one step of ``optimizer`` (an Adam or AdamW, see :func:`supports_masked_adam`) in which
    the coordinates where ``frozen[param]`` is True keep their weight and moment values.

    ``frozen`` maps parameters (by identity) to tensors of their shape on their device, True (bool) or 1
    (the parameter's dtype: no conversion per step) where frozen, else False or 0; parameters not in it
    are updated as torch would update them. Like torch, parameters without
    a gradient are skipped (their step count does not advance).
    """
    if not supports_masked_adam(optimizer):
        raise ValueError("masked_adam_step needs a plain torch.optim.Adam/AdamW (see supports_masked_adam)")
    masked = [p for p in frozen if p.grad is not None]
    # the lerp selection on the CPU with finite gradients (one check for all); torch.where otherwise
    lerp_ok = bool(masked) and all(p.device.type == "cpu" for p in masked) and bool(
        torch.isfinite(torch.stack(torch._foreach_norm([p.grad for p in masked]))).all())
    for group in optimizer.param_groups:
        beta1, beta2 = group["betas"]
        lr, eps, wd = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        decoupled = _decoupled(optimizer, group)
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad
            state = optimizer.state[p]
            if len(state) == 0:  # the same initial state as torch's Adam._init_group
                state["step"] = torch.tensor(0.0, dtype=torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            step_t += 1
            step = float(step_t)
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            step_size = lr / bias_correction1
            fz = frozen.get(p)
            if fz is None:  # torch's single-tensor Adam, operation for operation
                if wd != 0:
                    if decoupled:
                        p.mul_(1 - lr * wd)
                    else:
                        grad = grad.add(p, alpha=wd)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
                continue
            if wd != 0 and not decoupled:
                grad = grad.add(p, alpha=wd)
            if not lerp_ok:  # torch.where / masked_fill_: frozen coordinates intact whatever the values
                fz = fz if fz.dtype == torch.bool else fz != 0
                exp_avg.lerp_(torch.where(fz, exp_avg, grad), 1 - beta1)
                exp_avg_sq.lerp_(torch.where(fz, exp_avg_sq, grad * grad), 1 - beta2)
                update = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps)
                torch.div(exp_avg, update, out=update).mul_(step_size)
                if wd != 0 and decoupled:
                    update.add_(p, alpha=lr * wd)
                p.sub_(update.masked_fill_(fz, 0.0))
                continue
            # lerp(x, y, f) with f in {0, 1} selects x or y (the same values for finite inputs, signed zeros
            # aside), several times faster on the CPU than torch.where or masked_fill (their mask kernels)
            f = fz if fz.dtype == p.dtype else fz.to(p.dtype)
            exp_avg.lerp_(torch.lerp(grad, exp_avg, f), 1 - beta1)
            exp_avg_sq.lerp_(torch.lerp(grad * grad, exp_avg_sq, f), 1 - beta2)
            update = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps)
            torch.div(exp_avg, update, out=update).mul_(step_size)
            if wd != 0 and decoupled:
                update.add_(p, alpha=lr * wd)
            p.sub_(update.lerp_(update.new_zeros(()), f))
