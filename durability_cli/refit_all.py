"""``train --refit-all``: once validation chose each member's epoch, train it again on every specimen.

Early stopping holds a fifth of the specimens out of training (``--val-fraction``) to choose the
epoch. On a small table those are specimens the model is missing: with twice the training
specimens crack's RMSE fell 18 % and coating's 13 % (benchmarks/results/notes.md, session 34). So
after the run, each member is trained once more from its own start (its seed: the same initial
weights; its planned epochs: the same cosine learning rate) on all the specimens, nothing held
out, and stopped at the epoch its validation kept (training.train_one's ``stop_at``). What only
the held-out specimens could measure stays the first pass's: the band's validation factor, the
end-of-life paces, each member's validation scores and history, and the choices of the line and
the latent; the scale head is refitted on the new fit's specimens as training does. The cost is
one more run of each member to its chosen epoch, one member after the other.

Checkpoints: with ``--checkpoint CKPT`` the first pass's model is written beside it
(``CKPT.chosen``) before the refit starts; ``--resume CKPT`` finds it and runs the refit again
from there (the refit itself keeps no checkpoint).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from durability_cli.artifact import ModelBundle, save_bundle
from durability_cli.config import TrainConfig

# what each member's refit replaces in its summary; the rest (validation scores, history, band
# factor, end-of-life paces, the automatic choices) is the first pass's
REFIT_KEYS = (
    "scale_refit",
    "envelope",
    "target_range",
    "trained_warmup_rows",
    "latent_train_std",
)


def chosen_path(checkpoint: str | Path) -> str:
    """Where the first pass's model waits for its refit, beside ``checkpoint``."""
    return f"{checkpoint}.chosen"


def refit(table, first: ModelBundle, *, checkpoint=None, on_start=None, dist=None, **options) -> ModelBundle:
    """``first`` (a trained model or ensemble whose members validated on held-out specimens)
    with every member trained again on all of ``table`` to its chosen epoch. ``options``: the
    rest of ``training.train_one``'s keywords (device, on_epoch, init_from; resume and val_ids
    are not used: every specimen trains)."""
    from durability_cli.training import TrainingDiverged, TrainingInterrupted, train_one

    if not first.summary.get("val_specimens"):
        first.summary["refit_all"] = {"skipped": "no validation specimens: every specimen trained already"}
        return first
    if checkpoint is not None and (dist is None or dist.main):
        save_bundle(first, chosen_path(checkpoint))
    options.pop("resume", None)
    options.pop("val_ids", None)  # the specimens that validated are trained on now
    init_from = options.pop("init_from", None)
    bases = [None] if init_from is None else init_from.members
    n = len(first.members)
    refitted = []
    for k, member in enumerate(first.members):
        cfg = _refit_config(member.train_config)
        stop = max(1, int(member.summary.get("best_epoch") or 1))

        def start(info: dict, k: int = k, stop: int = stop) -> None:
            on_start({**info, "refit_member": k + 1, "members": n, "refit_epochs": stop, "epochs": stop})

        t0 = time.perf_counter()
        try:
            again = train_one(
                table,
                first.model_config,
                cfg,
                init_from=bases[k % len(bases)],
                on_start=None if on_start is None else start,
                dist=dist,
                stop_at=stop,
                **options,
            )
        except TrainingInterrupted:
            kept = (
                f"the model validation chose is kept in {chosen_path(checkpoint)}: --resume {checkpoint} "
                "runs the refit again from it"
                if checkpoint is not None
                else "without --checkpoint nothing of the run is kept"
            )
            raise TrainingInterrupted(
                f"training interrupted while refitting member {k + 1} of {n} on every specimen (--refit-all); {kept}"
            ) from None
        except TrainingDiverged as exc:
            raise TrainingDiverged(
                f"refitting member {k + 1} of {n} on every specimen: {exc}; the model as validation chose it "
                "is kept only without --refit-all",
                None,
            ) from None
        refitted.append(_merged(member, again, stop, time.perf_counter() - t0))
    out = refitted[0]  # member 0's summary is the whole model's: the ensemble block, the choices
    out.others = refitted[1:]
    seconds = sum(m.summary["refit_all"]["seconds"] for m in refitted)
    if out.summary.get("ensemble"):  # the members' band as render.band_text reads it
        out.summary["ensemble"] = {
            **out.summary["ensemble"],
            "scale_refit": [m.summary.get("scale_refit") for m in refitted],
        }
    out.summary["train_seconds"] = round((first.summary.get("train_seconds") or 0.0) + seconds, 3)
    out.summary["refit_all_seconds"] = round(seconds, 3)
    return out


def _refit_config(cfg: TrainConfig) -> TrainConfig:
    """A member's options for its refit: nothing held out, its own seed and planned epochs."""
    return replace(cfg, val_fraction=0.0, ensemble=1, refit_all=False)


def _merged(member: ModelBundle, again: ModelBundle, stop: int, seconds: float) -> ModelBundle:
    """The refitted weights and scaling with the first pass's options and validation results."""
    summary = dict(member.summary)
    for key in REFIT_KEYS:
        if key in again.summary:
            summary[key] = again.summary[key]
        else:
            summary.pop(key, None)
    summary["refit_all"] = {
        "epochs": stop,
        "specimens": len(again.summary.get("train_specimens") or []),
        "seconds": round(seconds, 3),
    }
    summary["train_seconds"] = round((member.summary.get("train_seconds") or 0.0) + seconds, 3)
    return ModelBundle(
        again.model, again.schema, again.scaler, member.model_config, member.train_config, summary
    )


def chosen(resume: str | Path, table, cfg: TrainConfig) -> ModelBundle | None:
    """The first pass's model an interrupted ``--refit-all`` run had finished (None: the
    checkpoint is still the first pass's)."""
    from durability_cli.training import load_finished

    return load_finished(resume, chosen_path(resume), table, cfg, "the model validation chose")
