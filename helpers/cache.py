"""A disk cache for computed tensors, keyed by everything that went into them.

``cached(fields, compute)`` stores ``compute()`` under a hash of ``fields`` in
``cache_folder()``; the fields name the model (``model_identity``: name and weights),
the data (``ImageSet.fingerprint``) and every setting, so re-running a notebook
cell is instant and changed inputs are always recomputed.

``data_dir()`` is the one place that decides where downloads and caches live: the folder
named by ``$CNN_INSIGHT_DATA``; else the repository's ``data/`` when it is writable; else
(a shared JupyterHub, an installed wheel) a per-user cache folder.
"""
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import torch

ENV_VAR = "CNN_INSIGHT_DATA"
REPO_DATA = Path(__file__).resolve().parents[1] / "data"
_CACHE_FORMAT = 1


def user_cache_dir(app="cnn-insight"):
    """The per-user cache folder of this platform (no folder is made).

    Windows ``%LOCALAPPDATA%\\cnn-insight``, macOS ``~/Library/Caches/cnn-insight``, elsewhere
    ``$XDG_CACHE_HOME/cnn-insight`` or ``~/.cache/cnn-insight``.
    """
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / app


def writable(folder):
    """Whether files can be created in ``folder`` (made if missing): tried, not guessed."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def data_dir():
    """Where downloads and caches go, decided afresh on every call.

    ``$CNN_INSIGHT_DATA`` when set; else the repository's ``data/`` (a checkout: the folder
    beside ``pyproject.toml``) when writable; else ``user_cache_dir()``.
    """
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return Path(chosen).expanduser()
    if (REPO_DATA.parent / "pyproject.toml").exists() and writable(REPO_DATA):
        return REPO_DATA
    return user_cache_dir()


def cache_folder():
    """The folder of cached tensors: ``data_dir() / "cache"``."""
    return data_dir() / "cache"


def tensor_bytes(t):
    """The raw bytes of a tensor (on the CPU, contiguous), for hashing."""
    return t.detach().cpu().contiguous().numpy().tobytes()


def model_identity(model):
    """Name plus a hash of every parameter and buffer: different weights, different identity."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(tensor_bytes(t))
    return f"{getattr(model, 'name', type(model).__name__)}:{h.hexdigest()}"


def transform_identity(transform, probe=None):
    """A stable description of a transform, or None when it has none (then nothing is cached).

    A module's weights and train/eval mode are part of it (its ``repr`` leaves them out), and
    a transform that gives different results for the same ``probe`` batch under different
    seeds (a random crop, a colour jitter) has none: its features are computed afresh.
    """
    if transform is None:
        return "none"
    key = getattr(transform, "cache_key", None) or repr(transform)
    if " at 0x" in key:
        return None
    if isinstance(transform, torch.nn.Module):
        key += f"|{model_identity(transform)}|training={transform.training}"
    if probe is not None and _random(transform, probe):
        return None
    return key


def _random(transform, probe, seeds=8):
    """Whether ``transform`` gives different results for ``probe`` under different seeds."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        results = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            results.append(transform(probe))
    return any(not torch.equal(results[0], r) for r in results[1:])


def _key(fields):
    """The JSON text of ``fields`` and the file name hash made from it."""
    text = json.dumps(dict(fields, format=_CACHE_FORMAT), sort_keys=True)
    return text, hashlib.sha256(text.encode()).hexdigest()[:32]


def on_disk(fields, cache_dir=None, prefix="cache"):
    """Whether a cache file for ``fields`` exists (it is still checked when read)."""
    _, digest = _key(fields)
    return (Path(cache_dir or cache_folder()) / f"{prefix}-{digest}.pt").exists()


def cached(fields, compute, cache_dir=None, prefix="cache"):
    """``compute()`` (a dict of tensors), stored under a hash of ``fields`` and reused next time.

    The stored file keeps the full ``fields``; a file whose fields differ (a hash
    collision or a hand-copied file) is recomputed, never returned.
    """
    if fields is None or cache_dir is False:
        return compute()
    text, digest = _key(fields)
    folder = Path(cache_dir or cache_folder())
    path = folder / f"{prefix}-{digest}.pt"
    if path.exists():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("fields") == text:
                return stored["tensors"]
        except Exception:  # noqa: BLE001, S110 - a truncated or foreign file is recomputed
            pass
    tensors = compute()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"fields": text, "tensors": tensors}, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return tensors


def clear_cache(cache_dir=None):
    """Delete every cached file; returns how many were removed."""
    folder = Path(cache_dir or cache_folder())
    files = list(folder.glob("*.pt")) if folder.exists() else []
    for f in files:
        f.unlink()
    return len(files)


__all__ = ["ENV_VAR", "cache_folder", "cached", "clear_cache", "data_dir", "model_identity",
           "on_disk", "tensor_bytes", "transform_identity", "user_cache_dir", "writable"]
