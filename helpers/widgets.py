"""ipywidgets building blocks shared by every notebook's "Explore" panel.

A panel is a thin wrapper around a pure function returning a figure: the
notebook calls the function once with defaults (so headless runs exercise it)
and ``panel`` wires the same function to sliders.
"""
import functools

import ipywidgets as W
from IPython.display import display

from . import hooks, models
from .images import PHOTOS, SAMPLES

PANELS = []  # every panel shown in this kernel, so tests can drive them all
_STYLE = {"description_width": "110px"}
_LAYOUT = W.Layout(width="340px")


def model_picker(value=models.OFFLINE, options=None):
    """Models usable right now (the offline one plus any cached torchvision weights)."""
    options = options or models.available_models()
    return W.Dropdown(options=options, value=value if value in options else options[0],
                      description="model", style=_STYLE, layout=_LAYOUT)


def layer_picker(model, value=None, options=None, size=224):
    """Dropdown of the model's main layers (see ``hooks.main_layers``)."""
    options = list(options or hooks.main_layers(model, size))
    return W.Dropdown(options=options, value=value if value in options else options[len(options) // 2],
                      description="layer", style=_STYLE, layout=_LAYOUT)


def channel_slider(model, layer_widget, value=0, size=224, description="channel"):
    """Channel slider whose range follows the layer picker."""
    n = functools.lru_cache(maxsize=None)(lambda layer: hooks.num_channels(model, layer, size))
    slider = W.IntSlider(value=value, min=0, max=n(layer_widget.value) - 1, description=description,
                         style=_STYLE, layout=_LAYOUT, continuous_update=False)

    def follow(change):
        slider.max = n(change["new"]) - 1  # ipywidgets clamps value into the new range
    layer_widget.observe(follow, names="value")
    return slider


def steps_slider(value=50, min=10, max=500, step=10, description="steps"):
    return W.IntSlider(value=value, min=min, max=max, step=step, description=description,
                       style=_STYLE, layout=_LAYOUT, continuous_update=False)


def int_slider(value, min, max, step=1, description=""):
    return W.IntSlider(value=value, min=min, max=max, step=step, description=description,
                       style=_STYLE, layout=_LAYOUT, continuous_update=False)


def float_slider(value, min, max, step=0.01, description=""):
    return W.FloatSlider(value=value, min=min, max=max, step=step, description=description,
                         style=_STYLE, layout=_LAYOUT, continuous_update=False)


def strength_slider(value=1e-3, min_exp=-6, max_exp=0, description="strength"):
    """Log-scale slider for a regularization strength (10**min_exp .. 10**max_exp)."""
    return W.FloatLogSlider(value=value, base=10, min=min_exp, max=max_exp, step=0.25,
                            description=description, style=_STYLE, layout=_LAYOUT,
                            continuous_update=False, readout_format=".1e")


def image_picker(value="chelsea", options=None, description="photo"):
    """Dropdown of the sample photos that ship with the dependencies."""
    options = list(options or PHOTOS)
    return W.Dropdown(options=options, value=value, description=description, style=_STYLE,
                      layout=_LAYOUT)


def toggle(value=True, description=""):
    return W.Checkbox(value=value, description=description, style=_STYLE, indent=False)


def panel(fn, **controls):
    """Show ``controls`` in a column beside the live output of ``fn(**values)``.

    ``fn`` returns a matplotlib figure (closed); it is redrawn whenever a control
    changes. Returns the ``ipywidgets.interactive`` object: its ``children`` are the
    controls then the Output, ``result`` is the last figure (what tests inspect).
    """
    # auto_display: show the returned figure (interactive's default only calls fn).
    ui = W.interactive(fn, {"auto_display": True}, **controls)
    PANELS.append(ui)
    box = W.HBox([W.VBox(list(ui.children[:-1]), layout=W.Layout(min_width="360px")),
                  ui.children[-1]])
    display(box)
    return ui


__all__ = ["model_picker", "layer_picker", "channel_slider", "steps_slider", "int_slider",
           "float_slider", "strength_slider", "image_picker", "toggle", "panel", "SAMPLES"]
