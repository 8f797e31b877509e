"""The model file: safetensors weights plus one JSON metadata block. No pickle, ever.

Loading has modelfile.py parse the safetensors header and check every metadata field (no torch
there), then compares each tensor's shape with the architecture's before handing the bytes to the
safetensors reader: nothing in the file is ever executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from durability_cli import __version__
from durability_cli.config import ModelConfig, TrainConfig, saved_model_config
from durability_cli.data import Scaler
from durability_cli.errors import InputError, ModelFileError
from durability_cli.io import atomic_path
from durability_cli.model import FeedbackRNN
from durability_cli.modelfile import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from durability_cli.modelfile import (
    FORMAT,
    MEMBER_FIELDS,
    check_metadata,
    malformed,
    member_entries,
    metadata,
    read_header,
)
from durability_cli.modelfile import FORMAT_VERSION as FORMAT_VERSION
from durability_cli.schema import Schema

_TORCH_DTYPES = {
    "F32": torch.float32,
    "F64": torch.float64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass
class ModelBundle:
    """A trained model and everything needed to use it."""

    model: FeedbackRNN
    schema: Schema
    scaler: Scaler
    model_config: ModelConfig
    train_config: TrainConfig
    summary: dict  # training summary: scores, epochs, history, envelope, data description
    package_version: str = __version__
    # An ensemble (train --ensemble N): this bundle is member 0 and ``others`` the members after
    # it, each with its own weights, scaling, training options (its seed) and summary; the schema
    # and the model options are the same for all.
    others: list[ModelBundle] = field(default_factory=list)

    @property
    def members(self) -> list[ModelBundle]:
        """Every member of the ensemble, this one first (a single model: itself)."""
        return [self, *self.others]

    def metadata(self) -> dict:
        meta = metadata(
            self.package_version,
            self.schema.to_dict(),
            self.scaler.to_dict(),
            _asdict(self.model_config),
            _asdict(self.train_config),
            self._latent_specimens(),
            self.summary,
        )
        if self.others:  # an ensemble: a format older releases refuse with "upgrade"
            meta["format_version"] = FORMAT_VERSION
            meta["members"] = [_member_fields(m.metadata()) for m in self.others]
        return meta

    def _latent_specimens(self) -> int:
        return 0 if self.model.latent_table is None else len(self.model.latent_table)


def _member_fields(meta: dict) -> dict:
    """What an ensemble file keeps of a member's metadata beyond the shared blocks."""
    return {k: meta[k] for k in MEMBER_FIELDS}


def _asdict(cfg) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


def build_model(meta: dict) -> FeedbackRNN:
    schema = Schema.from_dict(meta["schema"])
    scaler = Scaler.from_dict(meta["scaler"])
    mcfg = saved_model_config(meta["model_config"])
    return FeedbackRNN(
        mcfg,
        n_conditions=len(schema.covariates),
        n_static_numeric=len(scaler.static_numeric),
        static_cardinalities=list(meta.get("static_cardinalities", [])),
        step_scale=scaler.step_scale,
        dt_log_std=scaler.dt_std,
        latent_specimens=int(meta.get("latent_specimens", 0)),
    )


def save_bundle(bundle: ModelBundle, path: str | Path) -> None:
    """Write the model file atomically: member 0's tensors under their own names, member k's
    (an ensemble) under ``members.k.``."""
    tensors = {}
    for k, member in enumerate(bundle.members):
        prefix = f"members.{k}." if k else ""
        tensors.update(
            {prefix + name: v.detach().cpu().contiguous() for name, v in member.model.state_dict().items()}
        )
    blob = st_save(tensors, metadata={"durability": json.dumps(bundle.metadata(), allow_nan=False)})
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def load_bundle(path: str | Path) -> ModelBundle:
    """Read and check a model file; raise ModelFileError with one clear line if anything is off.

    Every metadata field is checked (types, sane limits, roles) and every tensor's shape compared
    with the shapes its architecture implies (built on torch's ``meta`` device, which allocates
    nothing) before any weight is read or any real module is built."""
    raw, header, meta = read_header(path, expect=FORMAT)
    name = str(path)
    metas = [meta, *member_entries(meta, name)]  # one metadata block per ensemble member
    checked = []
    for k, member in enumerate(metas):
        label = name if not k else f"{name} (ensemble member {k})"
        schema, mcfg, tcfg = check_metadata(member, label)
        try:
            scaler = Scaler.from_dict(member["scaler"])
            with torch.device("meta"):
                skeleton = build_model(member)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, InputError) as exc:
            # RuntimeError: torch refusing a size the metadata asks for (negative, beyond int64)
            raise malformed(label, exc) from None
        checked.append((schema, scaler, mcfg, tcfg, skeleton))
    _check_shapes([c[-1] for c in checked], header, name)
    tensors = _load_tensors(raw, name)
    bundles = []
    for k, (schema, scaler, mcfg, tcfg, _) in enumerate(checked):
        model = build_model(metas[k])
        _load_state(model, _member_tensors(tensors, k), name)
        model.eval()
        bundles.append(
            ModelBundle(
                model,
                schema,
                scaler,
                mcfg,
                tcfg,
                metas[k].get("summary", {}),
                meta.get("package_version", "?"),
            )
        )
    bundles[0].others = bundles[1:]
    return bundles[0]


def _member_tensors(tensors: dict, k: int) -> dict:
    """Member k's tensors, under the names its module gives them."""
    if not k:
        return {name: v for name, v in tensors.items() if not name.startswith("members.")}
    prefix = f"members.{k}."
    return {name[len(prefix) :]: v for name, v in tensors.items() if name.startswith(prefix)}


def _check_shapes(skeletons: list[torch.nn.Module], header: dict, name: str) -> None:
    """The file's tensors (names, shapes, dtypes from its header) against the architecture's
    (one skeleton per ensemble member; member k's names carry the prefix ``members.k.``)."""
    expected = {}
    for k, skeleton in enumerate(skeletons):
        prefix = f"members.{k}." if k else ""
        expected.update({prefix + key: v for key, v in skeleton.state_dict().items()})
    found = {k: v for k, v in header.items() if k != "__metadata__"}
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        what = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise ModelFileError(
            f"{name}: the weights do not match the architecture in the metadata ({what}); the file was altered or is damaged"
        )
    for (
        key,
        want,
    ) in expected.items():  # the architecture's order: the first mismatch named is always the same
        shape, dtype = tuple(found[key]["shape"]), _TORCH_DTYPES.get(found[key]["dtype"])
        if shape != tuple(want.shape) or dtype != want.dtype:
            raise ModelFileError(
                f"{name}: tensor {key!r} has shape {shape} {dtype}, the architecture needs "
                f"{tuple(want.shape)} {want.dtype}; the file was altered or is damaged"
            )


def _load_state(model: torch.nn.Module, tensors: dict, name: str) -> None:
    for key, value in tensors.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelFileError(
                f"{name}: tensor {key!r} holds NaN or infinite weights; the file is damaged, "
                "or it was saved from a diverged run: re-train"
            )
    model.load_state_dict(tensors)


def read_safetensors(path: str | Path, *, expect: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Validate the raw bytes of a safetensors file, then load it. Returns (tensors, metadata)."""
    raw, _, meta = read_header(path, expect=expect)
    return _load_tensors(raw, str(path)), meta


def _load_tensors(raw: bytes, name: str) -> dict[str, torch.Tensor]:
    try:
        return st_load(raw)
    except Exception as exc:  # the safetensors reader's own errors: damaged data
        raise ModelFileError(
            f"{name}: the weights cannot be read ({type(exc).__name__}); the file is damaged"
        ) from None


def describe_bundle(bundle: ModelBundle, path: str) -> dict:
    """What `durability inspect` shows: JSON-serialisable."""
    meta = bundle.metadata()
    meta["file"] = str(path)
    meta["parameters"] = sum(p.numel() for m in bundle.members for p in m.model.parameters())
    if bundle.others:  # as modelfile.describe_file shows them: each member's training summary
        meta["members"] = [m.summary for m in bundle.others]
    meta["package_version"] = bundle.package_version
    return meta
