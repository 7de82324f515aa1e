"""Checks of the numbers handed to public functions: sizes, counts, strengths.

Each raises one ``ValueError`` that says what is valid, before any heavy work, instead of an
error from deep inside torch or a silently wrong picture. Images are checked by
``helpers.images.as_batch`` (values, shape) and ``helpers.models.model_input`` (the smallest
size a network takes).
"""
import math
import numbers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_size(size, name="size", allow_none=False, minimum=1):
    """``size`` as an int side or an (H, W) tuple of ints >= ``minimum``.

    Raises:
        ValueError: anything else (0, negative, a fraction, a string), naming what is valid.
    """
    if size is None and allow_none:
        return None
    pair = tuple(size) if isinstance(size, (tuple, list)) else None
    values = pair if pair is not None else (size,)
    if (pair is not None and len(pair) != 2) or not all(_is_int(s) and s >= minimum
                                                         for s in values):
        raise ValueError(f"{name} must be a whole number of pixels >= {minimum} or an (H, W) pair "
                         f"of them{' (or None)' if allow_none else ''}, got {size!r}.")
    return int(size) if pair is None else tuple(int(s) for s in pair)


def check_count(value, name, minimum=1, maximum=None):
    """``value`` as an int in [minimum, maximum] (steps, samples, k, octaves...).

    Raises:
        ValueError: a fraction, a bool, or out of range, naming the valid range.
    """
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        valid = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be a whole number {valid}, got {value!r}.")
    return int(value)


def check_strength(value, name, minimum=0.0, maximum=None):
    """``value`` as a finite float in [minimum, maximum] (a weight, a noise level, a step size).

    Raises:
        ValueError: NaN, infinite, not a number, or out of range, naming the valid range.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        math.isfinite(value) and value >= minimum and (maximum is None or value <= maximum)
    if not ok:
        valid = f"in [{minimum:g}, {maximum:g}]" if maximum is not None else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {valid}, got {value!r}.")
    return float(value)


__all__ = ["check_count", "check_size", "check_strength"]
