"""The model file: safetensors weights plus one JSON metadata block. No pickle, ever.

Loading has modelfile.py parse the safetensors header and check every metadata field (no torch
there), then compares each tensor's shape with the architecture's before handing the bytes to the
safetensors reader: nothing in the file is ever executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from durability_cli import __version__
from durability_cli.config import ModelConfig, TrainConfig, build
from durability_cli.data import Scaler
from durability_cli.errors import InputError, ModelFileError
from durability_cli.io import atomic_path
from durability_cli.model import FeedbackRNN
from durability_cli.modelfile import CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from durability_cli.modelfile import FORMAT, check_metadata, malformed, metadata, read_header
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

    def metadata(self) -> dict:
        latent = 0 if self.model.latent_table is None else len(self.model.latent_table)
        return metadata(
            self.package_version,
            self.schema.to_dict(),
            self.scaler.to_dict(),
            _asdict(self.model_config),
            _asdict(self.train_config),
            latent,
            self.summary,
        )


def _asdict(cfg) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


def build_model(meta: dict) -> FeedbackRNN:
    schema = Schema.from_dict(meta["schema"])
    scaler = Scaler.from_dict(meta["scaler"])
    mcfg = build(ModelConfig, meta["model_config"], source="model file")
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
    """Write the model file atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in bundle.model.state_dict().items()}
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
    schema, mcfg, tcfg = check_metadata(meta, name)
    try:
        scaler = Scaler.from_dict(meta["scaler"])
        with torch.device("meta"):
            skeleton = build_model(meta)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, InputError) as exc:
        # RuntimeError: torch refusing a size the metadata asks for (negative, beyond int64)
        raise malformed(name, exc) from None
    _check_shapes(skeleton, header, name)
    model = build_model(meta)
    _load_state(model, _load_tensors(raw, name), name)
    model.eval()
    return ModelBundle(
        model, schema, scaler, mcfg, tcfg, meta.get("summary", {}), meta.get("package_version", "?")
    )


def _check_shapes(skeleton: torch.nn.Module, header: dict, name: str) -> None:
    """The file's tensors (names, shapes, dtypes from its header) against the architecture's."""
    expected = skeleton.state_dict()
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
    meta["parameters"] = sum(p.numel() for p in bundle.model.parameters())
    meta["package_version"] = bundle.package_version
    return meta
