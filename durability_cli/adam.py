"""Adam, computed as torch.optim.Adam computes it on the CPU, in a class that does not import
torch._dynamo.

torch.optim's Optimizer imports ``torch._dynamo`` when it is built and again in its step's wrapper
(for the graph breaks ``torch.compile`` needs): 1.7 s of a short ``durability train``'s 6.5 s on
this project's 2-core machine (``python benchmarks/train_start.py``), paid again by every
``--jobs`` child and ``--nproc`` process. Nothing here is compiled, so ``Adam`` is a small optimiser
of its own: torch's single-tensor algorithm (the one it takes on the CPU) operation for operation,
with L2 weight decay, and torch's ``param_groups``, ``state`` and ``state_dict`` layout (``step``,
``exp_avg``, ``exp_avg_sq`` per parameter, the same dtypes), so a checkpoint written with
torch.optim.Adam resumes here. tests/test_adam.py holds the two to the same weights bit for bit.
"""

from __future__ import annotations

import torch


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: float,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    """One Adam update of ``param`` in place (no autograd), ``step`` counted from 1, and the
    moments ``exp_avg`` and ``exp_avg_sq`` updated in place, as torch's single-tensor Adam does."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Adam:
    """Adam over ``params`` (tensors, or groups: dicts with "params" and any option to override),
    with torch.optim.Adam's ``step``, ``zero_grad``, ``param_groups``, ``state``,
    ``state_dict`` and ``load_state_dict`` (see the module's docstring)."""

    def __init__(
        self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
    ):
        groups = list(params)
        if not groups:
            raise ValueError("the optimiser got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        self.param_groups: list[dict] = [
            {**defaults, **{k: v for k, v in group.items() if k != "params"}, "params": list(group["params"])}
            for group in groups
        ]
        self.state: dict[torch.Tensor, dict] = {}

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self._params():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.detach_()
                param.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state.get(param)
                if not state:
                    state = self.state[param] = {
                        "step": torch.tensor(0.0, dtype=_scalar_dtype()),
                        "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                        "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                    }
                state["step"] += 1
                adam_update(
                    param,
                    param.grad,
                    state["exp_avg"],
                    state["exp_avg_sq"],
                    state["step"].item(),
                    lr=float(group["lr"]),
                    beta1=float(beta1),
                    beta2=float(beta2),
                    eps=group["eps"],
                    weight_decay=group["weight_decay"],
                )

    def state_dict(self) -> dict:
        """torch's layout: {"state": {index: slots}, "param_groups": [options with "params":
        indices]}, parameters numbered in their groups' order (the tensors are not copied)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for param in group["params"]:
                index.setdefault(id(param), len(index))
                ids.append(index[id(param)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        return {"state": {index[id(p)]: dict(s) for p, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state_dict of this class's or of torch.optim.Adam's: the groups' options, and
        each parameter's moments copied to its device and dtype."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups) or any(
            len(s["params"]) != len(g["params"]) for s, g in zip(saved, self.param_groups, strict=True)
        ):
            raise ValueError("the saved optimiser state has other parameter groups than this model's")
        by_index = {
            i: p
            for s, g in zip(saved, self.param_groups, strict=True)
            for i, p in zip(s["params"], g["params"], strict=True)
        }
        self.state = {}
        for idx, slots in state_dict["state"].items():
            param = by_index[int(idx)]
            self.state[param] = {
                key: value.clone()  # the count stays on the CPU, as torch keeps it
                if key == "step"
                else value.to(device=param.device, dtype=param.dtype).clone()
                for key, value in ((k, torch.as_tensor(v)) for k, v in slots.items())
            }
        for group, options in zip(self.param_groups, saved, strict=True):
            group.update({k: v for k, v in options.items() if k != "params"})
            group["betas"] = tuple(group["betas"])
