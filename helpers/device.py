"""The one place that decides where tensors and models live, and on how many CPU threads."""
import contextlib
import os

import torch


def device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a module with neither."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


# ------------------------------------------------------------------ CPU threads

SMALL = 256 * 256  # images up to this many pixels are optimized on one CPU thread


def busy_cpu():
    """True when other processes already keep every core busy (1-minute load >= cores).

    Then one thread per process is faster than many: OpenMP threads spin waiting
    for each other when they do not get a core each. Where the load is unknown
    (Windows has no ``os.getloadavg``; some containers refuse it) the answer is False.
    """
    getloadavg = getattr(os, "getloadavg", None)
    if getloadavg is None:
        return False
    try:
        return getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:
        return False


@contextlib.contextmanager
def cpu_threads(n=None):
    """Run a block with ``n`` torch threads (default: 1 on a busy CPU, else unchanged)."""
    before = torch.get_num_threads()
    n = n or (1 if busy_cpu() else before)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def small_image_threads(height, width):
    """Run on one CPU thread for images up to ``SMALL`` pixels, restoring the setting afterwards.

    A small forward + backward pass is too little work to split between threads.
    """
    threads = torch.get_num_threads()
    if height * width <= SMALL:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
