"""The model file read and checked without torch: the safetensors header (an 8-byte little-endian
length, then JSON with each tensor's dtype, shape and offsets, and a ``__metadata__`` block that
holds ours), and every metadata field. `durability inspect` needs nothing more, so it answers
without importing torch; artifact.py checks the weights against the architecture and builds the
model from what this module has checked.

The bytes are parsed here before anything else reads them, so that a pickle, a zip made by
``torch.save``, a truncated or tampered file each gets one clear error.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path
from types import SimpleNamespace

from durability_cli import __version__, limits
from durability_cli.config import ModelConfig, TrainConfig, as_dict, build, saved_model_config
from durability_cli.errors import InputError, ModelFileError
from durability_cli.io import read_at_most
from durability_cli.schema import Schema, check_roles

FORMAT = "durability-model"
FORMAT_VERSION = 2  # the newest this reads; a single model is still written as 1, an ensemble as 2
SINGLE_FORMAT_VERSION = 1  # single models and checkpoints: readable by every release
# An ensemble member's own metadata (the schema and the model options are the ensemble's)
MEMBER_FIELDS = ("scaler", "train_config", "static_cardinalities", "latent_specimens", "summary")
MAX_MEMBERS = 64  # config.TRAIN_LIMITS["ensemble"]
CHECKPOINT_FORMAT = "durability-checkpoint"
MAX_HEADER = 100 * 1024 * 1024  # a header larger than this is not one we wrote
MAX_DEPTH = 32  # JSON nesting of the header and metadata; ours is 4 deep
MAX_LATENT_SPECIMENS = 10**8  # rows of the latent table (one per training specimen)
MAX_SCALE = 1e16  # scaling statistics: tables hold values up to schema.MAX_MAGNITUDE
DTYPE_SIZES = {
    "F32": 4,
    "F64": 8,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
# The model's buffers (model.FeedbackRNN.register_buffer): in the file, not among its parameters.
BUFFERS = ("step_scale", "dt_log_std")


def metadata(
    package_version: str,
    schema: dict,
    scaler: dict,
    model_config: dict,
    train_config: dict,
    latent_specimens: int,
    summary: dict,
) -> dict:
    """The metadata block of a model file, in the order it is written and shown."""
    return {
        "format": FORMAT,
        "format_version": SINGLE_FORMAT_VERSION,
        "package_version": package_version,
        "schema": schema,
        "scaler": scaler,
        "model_config": model_config,
        "train_config": train_config,
        "static_cardinalities": [len(v) + 1 for v in scaler.get("static_vocab", {}).values()],
        "latent_specimens": latent_specimens,
        "summary": summary,
    }


def describe_file(path: str | Path) -> dict:
    """What `durability inspect` shows, from the header alone (the weights are neither read nor
    checked: forecast and evaluate do that): the metadata as the loader reads it, the file name
    and the number of parameters."""
    _, header, meta = read_header(path, expect=FORMAT)
    schema, model_config, train_config = check_metadata(meta, str(path))
    info = metadata(
        meta.get("package_version", "?"),
        schema.to_dict(),
        scaler_fields(meta["scaler"]),
        as_dict(model_config),
        as_dict(train_config),
        meta.get("latent_specimens", 0),
        meta.get("summary", {}),
    )
    members = member_entries(meta, str(path))
    for k, member in enumerate(members, start=1):
        check_metadata(member, f"{path} (ensemble member {k})")
    if members:
        info["format_version"] = meta["format_version"]
        info["members"] = [member["summary"] for member in members]
    info["file"] = str(path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__" and k.rsplit(".", 1)[-1] not in BUFFERS}
    info["parameters"] = sum(math.prod(t["shape"]) for t in tensors.values())
    return info


def member_entries(meta: dict, name: str) -> list[dict]:
    """An ensemble file's members after the first: each its MEMBER_FIELDS over the file's
    metadata (so that each is checked and built like a single model's); [] for a single model."""
    entries = meta.get("members", [])
    if not isinstance(entries, list) or len(entries) >= MAX_MEMBERS:
        raise ModelFileError(
            f"{name}: the ensemble's member list is malformed (at most {MAX_MEMBERS} members); the file is damaged"
        )
    out = []
    for k, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not set(MEMBER_FIELDS) <= set(entry):
            raise ModelFileError(
                f"{name}: ensemble member {k}'s metadata is incomplete ({', '.join(MEMBER_FIELDS)}); the file is damaged"
            )
        out.append({**meta, **{key: entry[key] for key in MEMBER_FIELDS}})
    return out


def check_metadata(meta: dict, name: str) -> tuple[Schema, ModelConfig, TrainConfig]:
    """Every metadata field against its type and sane limits: raise ModelFileError with one line
    naming the first one that is off. Returns the schema and the two configs."""
    try:
        schema = Schema.from_dict(meta["schema"])
        check_roles(schema)
        scaler = SimpleNamespace(**scaler_fields(meta["scaler"]))  # what _check_numbers reads
        model_config = saved_model_config(meta["model_config"])
        train_config = build(TrainConfig, meta["train_config"], source="model file")
        _check_numbers(meta, schema, scaler)
    except (KeyError, TypeError, ValueError, AttributeError, InputError) as exc:
        raise malformed(name, exc) from None
    return schema, model_config, train_config


def scaler_fields(scaler: dict) -> dict:
    """The scaling block as data.Scaler reads it: the fields with a default may be missing."""
    return scaler | {k: {} for k in ("static_numeric", "static_vocab", "cond_transform") if k not in scaler}


def malformed(name: str, exc: Exception) -> ModelFileError:
    # InputError: a config value out of range; its template keeps the argument marks
    return ModelFileError(
        f"{name}: the model metadata is incomplete or malformed ({getattr(exc, 'template', exc)!s}); re-train or re-download the file"
    )


def _check_numbers(meta: dict, schema: Schema, scaler) -> None:
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
    if getattr(scaler, "step_mean", None) is not None:  # files from before it was kept lack it
        finite("step_mean", scaler.step_mean)
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
    _check_summary(summary, n)
    if summary.get("scale_calibration") is not None:
        if finite("scale_calibration", summary["scale_calibration"]) <= 0:
            raise ValueError(f"scale_calibration is {summary['scale_calibration']!r}, not a positive factor")
    calibrated = summary.get("calibration")
    if calibrated is not None:  # durability calibrate's record
        if not isinstance(calibrated, dict):
            raise ValueError("calibration is not a JSON object")
        edges, factors, centres = (
            calibrated.get("edges"),
            calibrated.get("factors"),
            calibrated.get("centres"),
        )
        if not all(isinstance(x, list) for x in (edges, factors, centres)) or not (
            len(factors) == len(centres) == len(edges) + 1
        ):
            raise ValueError("calibration needs its step edges, and a centre and a factor per bin")
        if [finite("calibration centre", c) for c in centres] != sorted(set(centres)):
            raise ValueError(f"calibration centres {centres!r} are not increasing steps")
        if any(isinstance(e, bool) or not isinstance(e, int) for e in edges) or edges != sorted(set(edges)):
            raise ValueError(f"calibration edges {edges!r} are not increasing whole steps")
        for f in factors:
            if finite("calibration factor", f) <= 0:
                raise ValueError(f"calibration factor is {f!r}, not a positive factor")
        if ("under" in calibrated) != ("over" in calibrated):
            raise ValueError(
                "calibration has factors for one half of the band only (under and over go together)"
            )
        for side in ("under", "over"):  # calibrate --sides each: a factor per half of the band
            if side not in calibrated:
                continue
            values = calibrated[side]
            if not isinstance(values, list) or len(values) != len(factors):
                raise ValueError(f"calibration's {side!r} factors are not one per bin")
            for f in values:
                if finite(f"calibration {side} factor", f) <= 0:
                    raise ValueError(f"calibration {side} factor is {f!r}, not a positive factor")
        eol = calibrated.get("eol")
        if eol is not None and (not isinstance(eol, dict) or "shift" not in eol):
            raise ValueError("calibration's end-of-life record is not a JSON object with a shift")
        if eol is not None:
            finite("calibration end-of-life shift", eol["shift"])
    for key, bounds in (summary.get("envelope") or {}).items():
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ValueError(f"envelope {key!r} is not a [low, high] pair")
        finite(f"envelope {key!r}", bounds[0])
        finite(f"envelope {key!r}", bounds[1])
    sample = summary.get("step_sample")
    if sample is not None:
        rows = sample.get("rows") if isinstance(sample, dict) else None
        width = len(sample.get("columns") or []) if isinstance(sample, dict) else 0
        if not isinstance(rows, list) or len(rows) > 100_000:
            raise ValueError("step_sample is not a list of training steps")
        for row in rows:
            if not isinstance(row, list) or len(row) != width:
                raise ValueError("step_sample has a row that is not one value per column")
            for v in row:
                finite("step_sample value", v)
    span = summary.get("longest_span")
    if span is not None:
        finite("longest_span", span)
    seen = summary.get("target_range")
    if seen is not None:
        if not isinstance(seen, list) or len(seen) != 2:
            raise ValueError("target_range is not a [low, high] pair")
        finite("target_range low", seen[0])
        finite("target_range high", seen[1])


def _check_summary(summary: dict, conditions: int) -> None:
    """The summary fields that `inspect` and `plot history` compute with: numbers or null."""

    def number(label: str, value) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{label} is {value!r}, not a number")

    for key in (
        "best_val_rmse",
        "val_persistence_rmse",
        "best_epoch",
        "epochs_run",
        "latent_val_rmse_population",
    ):
        number(key, summary.get(key))
    baselines = summary.get("val_baseline_rmse", {})
    if not isinstance(baselines, dict):
        raise ValueError("val_baseline_rmse is not a JSON object")
    for name, value in baselines.items():
        number(f"val_baseline_rmse {name!r}", value)
    paths = summary.get("mixed_effects")
    if paths is not None:  # the mixed-effects baseline evaluate scores (mixed_effects.py)
        from durability_cli.mixed_effects import PathFit

        if not isinstance(paths, dict):
            raise ValueError("mixed_effects is not a JSON object")
        fit = PathFit.from_json(paths)
        if fit.centre is not None and fit.centre.size != conditions:
            raise ValueError(f"mixed_effects reads {fit.centre.size} condition(s), the schema {conditions}")
        w = paths.get("weight")
        if w is not None and (isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 1):
            raise ValueError(f"mixed_effects weight is {w!r}, not a number in [0, 1]")
    block = summary.get("ensemble", {})
    if not isinstance(block, dict):
        raise ValueError("the ensemble block of the summary is not a JSON object")
    for key in ("seeds", "best_val_rmse", "best_epoch", "epochs_run", "train_seconds"):
        values = block.get(key, [])
        if not isinstance(values, list):
            raise ValueError(f"ensemble {key} is not a list")
        for value in values:
            number(f"ensemble {key}", value)
    history = summary.get("history", [])
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise ValueError("the training history is not a list of JSON objects")
    for i, entry in enumerate(history):
        for key in ("epoch", "train_loss", "val_rmse", "teacher_forcing"):
            number(f"history entry {i} {key}", entry.get(key))


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
        # A pickle starts with 0x80 and its protocol; so does a safetensors length whose low byte
        # is 0x80, but that length is a plausible header size (a pickle's opcodes make it huge).
        length_like = header_len <= MAX_HEADER if len(raw) >= 8 else not any(raw[3:])
        if raw[:2] == b"PK" or (raw[:1] == b"\x80" and not length_like):
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
        if not isinstance(info, dict) or info.get("dtype") not in DTYPE_SIZES:
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
        if not (0 <= start <= stop <= data_len) or stop - start != count * DTYPE_SIZES[info["dtype"]]:
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
