"""The model file: safetensors weights plus one JSON metadata block. No pickle, ever.

Loading parses the safetensors header itself before handing the file to the safetensors reader, so
that a pickle, a zip made by ``torch.save``, a truncated or tampered file each gets one clear error,
and nothing in the file is ever executed.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from durability_cli import __version__, limits
from durability_cli.config import ModelConfig, TrainConfig, build
from durability_cli.data import Scaler
from durability_cli.errors import InputError, ModelFileError
from durability_cli.io import atomic_path, read_at_most
from durability_cli.model import FeedbackRNN
from durability_cli.schema import Schema, check_roles

FORMAT = "durability-model"
FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "durability-checkpoint"
MAX_HEADER = 100 * 1024 * 1024  # a header larger than this is not one we wrote
MAX_DEPTH = 32  # JSON nesting of the header and metadata; ours is 4 deep
MAX_LATENT_SPECIMENS = 10**8  # rows of the latent table (one per training specimen)
MAX_SCALE = 1e16  # scaling statistics: tables hold values up to schema.MAX_MAGNITUDE
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
_SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


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
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": self.package_version,
            "schema": self.schema.to_dict(),
            "scaler": self.scaler.to_dict(),
            "model_config": _asdict(self.model_config),
            "train_config": _asdict(self.train_config),
            "static_cardinalities": [len(v) + 1 for v in self.scaler.static_vocab.values()],
            "latent_specimens": 0 if self.model.latent_table is None else len(self.model.latent_table),
            "summary": self.summary,
        }


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
    try:
        schema = Schema.from_dict(meta["schema"])
        check_roles(schema)
        scaler = Scaler.from_dict(meta["scaler"])
        mcfg = build(ModelConfig, meta["model_config"], source="model file")
        tcfg = build(TrainConfig, meta["train_config"], source="model file")
        _check_numbers(meta, schema, scaler)
        with torch.device("meta"):
            skeleton = build_model(meta)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, InputError) as exc:
        # RuntimeError: torch refusing a size the metadata asks for (negative, beyond int64)
        # InputError: a config value out of range; its template keeps the argument marks
        raise ModelFileError(
            f"{name}: the model metadata is incomplete or malformed ({getattr(exc, 'template', exc)!s}); re-train or re-download the file"
        ) from None
    _check_shapes(skeleton, header, name)
    model = build_model(meta)
    _load_state(model, _load_tensors(raw, name), name)
    model.eval()
    return ModelBundle(
        model, schema, scaler, mcfg, tcfg, meta.get("summary", {}), meta.get("package_version", "?")
    )


def _check_numbers(meta: dict, schema: Schema, scaler: Scaler) -> None:
    """The numbers a forecast computes with: finite, positive spreads, one per condition."""

    def finite(label: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{label} is {value!r}, not a finite number")
        if abs(value) > MAX_SCALE:
            raise ValueError(f"{label} is {value!r}, beyond the {MAX_SCALE:g} a model trained here can hold")
        return float(value)

    n = len(schema.covariates)
    if len(scaler.cond_mean) != n or len(scaler.cond_std) != n:
        raise ValueError(f"the scaling has {len(scaler.cond_mean)} condition(s), the schema {n}")
    for label, value in [("y_mean", scaler.y_mean), ("dt_mean", scaler.dt_mean)] + [
        ("cond_mean", v) for v in scaler.cond_mean
    ]:
        finite(label, value)
    for label, value in [
        ("y_std", scaler.y_std),
        ("dt_std", scaler.dt_std),
        ("step_scale", scaler.step_scale),
    ]:
        if finite(label, value) <= 0:
            raise ValueError(f"{label} is {value!r}, must be positive")
    for value in scaler.cond_std:
        if finite("cond_std", value) <= 0:
            raise ValueError(f"cond_std is {value!r}, must be positive")
    if scaler.cond_transform:
        from durability_cli.transforms import TRANSFORMS

        if not isinstance(scaler.cond_transform, dict) or list(scaler.cond_transform) != list(
            schema.covariates
        ):
            raise ValueError("the condition transforms do not list the schema's conditions")
        if not all(v == "" or v in TRANSFORMS for v in scaler.cond_transform.values()):
            raise ValueError(f"unknown condition transform in {scaler.cond_transform}")
    for key, pair in scaler.static_numeric.items():
        if not isinstance(pair, list) or len(pair) != 2 or finite(f"static {key!r}", pair[1]) <= 0:
            raise ValueError(f"the scaling of static {key!r} is not a [mean, positive std] pair")
        finite(f"static {key!r}", pair[0])
    count = meta.get("latent_specimens", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_LATENT_SPECIMENS:
        raise ValueError(
            f"latent_specimens is {count!r}, not a count of specimens up to {MAX_LATENT_SPECIMENS:,}"
        )
    cards = [len(v) + 1 for v in scaler.static_vocab.values()]
    if list(meta.get("static_cardinalities", [])) != cards:
        raise ValueError("static_cardinalities do not match the static vocabularies")
    summary = meta.get("summary", {})
    if not isinstance(summary, dict):
        raise ValueError("the training summary is not a JSON object")
    _check_summary(summary)
    if summary.get("scale_calibration") is not None:
        finite("scale_calibration", summary["scale_calibration"])
    for key, bounds in (summary.get("envelope") or {}).items():
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ValueError(f"envelope {key!r} is not a [low, high] pair")
        finite(f"envelope {key!r}", bounds[0])
        finite(f"envelope {key!r}", bounds[1])


def _check_summary(summary: dict) -> None:
    """The summary fields that `inspect` and `plot history` compute with: numbers or null."""

    def number(label: str, value) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{label} is {value!r}, not a number")

    for key in ("best_val_rmse", "val_persistence_rmse", "best_epoch", "epochs_run"):
        number(key, summary.get(key))
    history = summary.get("history", [])
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise ValueError("the training history is not a list of JSON objects")
    for i, entry in enumerate(history):
        for key in ("epoch", "train_loss", "val_rmse", "teacher_forcing"):
            number(f"history entry {i} {key}", entry.get(key))


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


def _read_model_bytes(p: Path, name: str) -> bytes:
    """The file's bytes, read with a size cap (a quarter of the memory budget): a huge file, a
    FIFO or /dev/zero is refused without being read whole. A header length that no model file has
    stops the read after 8 bytes."""
    cap = limits.budget() // 4
    try:
        with open(p, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_size > cap:
                raise ModelFileError(_too_big(name, st.st_size, cap))
            first = fh.read(8)
            if len(first) == 8 and not 0 < struct.unpack("<Q", first)[0] <= MAX_HEADER:
                return first  # read_header refuses it
            return first + read_at_most(
                fh.read, cap - len(first), lambda: ModelFileError(_too_big(name, None, cap))
            )
    except OSError as exc:
        raise ModelFileError(f"{name}: cannot read the model file ({exc.strerror or exc})") from None


def _too_big(name: str, size: int | None, cap: int) -> str:
    what = f"is {limits.size_text(size)}" if size is not None else "goes on"
    return (
        f"{name}: the file {what}, more than the {limits.size_text(cap)} a model file may take "
        "(a quarter of the memory budget); it is not a durability model, or raise durability --max-memory"
    )


def _json(text, name: str, what: str):
    """json.loads, refusing nesting deeper than MAX_DEPTH (ours is 4 deep) in one line."""
    try:
        value = json.loads(text)
        deep = _depth(value) > MAX_DEPTH
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{name}: {what} is not valid JSON; the file is damaged") from None
    except RecursionError:
        deep = True
    if deep:
        raise ModelFileError(
            f"{name}: {what} is nested more than {MAX_DEPTH} levels deep; the file is damaged"
        )
    return value


def _depth(value) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def read_header(path: str | Path, *, expect: str) -> tuple[bytes, dict, dict]:
    """Validate the raw bytes of a safetensors file without reading any tensor.
    Returns (the bytes, the safetensors header, the durability metadata)."""
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{name}: model file not found")
    if p.is_dir():
        raise ModelFileError(f"{name}: is a folder, not a model file")
    raw = _read_model_bytes(p, name)
    header_len = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else 0
    if header_len == 0 or header_len > MAX_HEADER or 8 + header_len > len(raw) or raw[8:9] != b"{":
        if raw[:2] == b"PK" or raw[:1] == b"\x80":
            raise ModelFileError(
                f"{name}: this is a pickle or torch.save file; durability only loads its own safetensors "
                "model files (pickles can run code when loaded), so it was not opened"
            )
        if len(raw) < 8:
            raise ModelFileError(f"{name}: the file is truncated (only {len(raw)} bytes)")
        raise ModelFileError(f"{name}: not a durability model file, or truncated (bad safetensors header)")
    header = _json(raw[8 : 8 + header_len], name, "the safetensors header")
    if not isinstance(header, dict):
        raise ModelFileError(f"{name}: the safetensors header is malformed; the file is damaged")
    data_len = len(raw) - 8 - header_len
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in _TORCH_DTYPES:
            raise ModelFileError(
                f"{name}: tensor {key!r} has an unsupported or missing dtype; the file is damaged"
            )
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (
            not isinstance(shape, list)
            or not all(isinstance(s, int) and s >= 0 for s in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
        ):
            raise ModelFileError(
                f"{name}: tensor {key!r} has a malformed shape or offsets; the file is damaged"
            )
        count = 1
        for s in shape:
            count *= s
        start, stop = offsets
        if not (0 <= start <= stop <= data_len) or stop - start != count * _SIZES[info["dtype"]]:
            raise ModelFileError(
                f"{name}: tensor {key!r} does not fit in the file; it is truncated or damaged"
            )
    meta_block = header.get("__metadata__") or {}
    if not isinstance(meta_block, dict) or not isinstance(meta_block.get("durability"), str):
        raise ModelFileError(
            f"{name}: a safetensors file, but not a durability model (no durability metadata)"
        )
    meta = _json(meta_block["durability"], name, "the durability metadata")
    if not isinstance(meta, dict):
        raise ModelFileError(f"{name}: the durability metadata is not a JSON object; the file is damaged")
    fmt = meta.get("format")
    if fmt != expect:
        kind = "a training checkpoint" if fmt == CHECKPOINT_FORMAT else f"format {fmt!r}"
        hint = " (use it with --resume)" if fmt == CHECKPOINT_FORMAT else ""
        raise ModelFileError(f"{name}: this is {kind}, not a {expect} file{hint}")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"{name}: the metadata has no format version; the file is damaged")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: made by a newer durability (format {version}, this is {__version__} reading format "
            f"{FORMAT_VERSION}); upgrade with: pip install -U durability"
        )
    return raw, header, meta


def describe_bundle(bundle: ModelBundle, path: str) -> dict:
    """What `durability inspect` shows: JSON-serialisable."""
    meta = bundle.metadata()
    meta["file"] = str(path)
    meta["parameters"] = sum(p.numel() for p in bundle.model.parameters())
    meta["package_version"] = bundle.package_version
    return meta
