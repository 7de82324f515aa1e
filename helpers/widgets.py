"""ipywidgets building blocks shared by every notebook's "Explore" panel.

A panel is a thin wrapper around a pure function returning a figure: the
notebook calls the function once with defaults (so headless runs exercise it)
and ``panel`` wires the same function to sliders.
"""
import functools
import sys

import ipywidgets as W
from IPython import get_ipython
from IPython.display import display
from IPython.utils.capture import capture_output

from . import hooks, models
from .images import PHOTOS, SAMPLES, center_crop_resize, load_image
from .style_images import upload_box

PANELS = []  # every panel shown in this kernel, so tests can drive them all
_STYLE = {"description_width": "110px"}
_LAYOUT = W.Layout(width="340px")


def model_picker(value=models.OFFLINE, options=None):
    """Models usable right now (the offline one plus any cached torchvision weights)."""
    options = options or models.available_models()
    return W.Dropdown(options=options, value=value if value in options else options[0],
                      description="model", style=_STYLE, layout=_LAYOUT)


def layer_picker(model, value=None, options=None, size=224, description="layer"):
    """Dropdown of the model's main layers (see ``hooks.main_layers``)."""
    options = list(options or hooks.main_layers(model, size))
    return W.Dropdown(options=options, value=value if value in options else options[len(options) // 2],
                      description=description, style=_STYLE, layout=_LAYOUT)


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


def dropdown(options, value=None, description=""):
    """A plain dropdown in the panels' style (``value`` defaults to the first option)."""
    options = list(options)
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    return W.Dropdown(options=options, value=value if value in values else values[0],
                      description=description, style=_STYLE, layout=_LAYOUT)


def text(value="", placeholder="", description=""):
    """A text box that reports its value on Enter or when it loses focus (not per keystroke)."""
    return W.Text(value=value, placeholder=placeholder, description=description,
                  continuous_update=False, style=_STYLE, layout=_LAYOUT)


def class_options(model, photo, k=5, size=None):
    """The photo's top ``k`` classes as dropdown options ``("name (p%)", class index)``.

    ``photo``: a name known to ``load_image`` (a sample photo), read at the model's input size.
    """
    image = load_image(photo, size or getattr(model, "input_size", 224))
    return [(f"{name} ({p:.0%})", i) for i, name, p in models.predict(model, image, k=k)[0]]


def class_picker(model, photo_widget, k=5, size=None, description="class"):
    """Dropdown of the top ``k`` classes of the photo chosen in ``photo_widget``; follows it.

    Create it before the panel that uses both: the options then change before the panel
    redraws, so the panel never draws a class of the previous photo.
    """
    picker = dropdown(class_options(model, photo_widget.value, k, size), description=description)

    def follow(change):
        picker.options = class_options(model, change["new"], k, size)  # selects the top class
    photo_widget.observe(follow, names="value")
    return picker


class Uploads:
    """Images uploaded in this kernel, by name, and the resolver that panels call.

    ``uploads = Uploads(load)`` wraps ``load(name, size)`` (how names that are not uploads are
    read); ``uploads(name, size)`` returns the upload called ``name`` (central square resized
    to ``size``) or ``load(name, size)``; ``uploads.box(picker)`` is the upload button that
    adds ``"upload 1"``, ``"upload 2"``... to the dropdown ``picker`` (see
    ``style_images.upload_box``). Panels keep taking names, so their caches still work.
    """

    def __init__(self, load=load_image, size=512):
        self.load, self.size, self.images = load, size, {}

    def __contains__(self, name):
        return name in self.images

    def __call__(self, name, size):
        if name in self.images:
            return center_crop_resize(self.images[name], size)
        return self.load(name, size)

    def box(self, picker, description="your image"):
        """A FileUpload and a message line; a valid upload becomes ``picker``'s new value."""
        return upload_box(picker, self.images, size=self.size, description=description)


class _Interactive(W.interactive):
    """``ipywidgets.interactive`` whose first drawing goes into the Output widget's state.

    The first call runs while the cell executes; interactive shows it by capturing display
    messages into the Output widget, which a notebook-executing front end (Voila, nbclient)
    has to mimic, and Voila 0.5 then sometimes waits forever for the cell's reply
    (voila-dashboards/voila#1428). Setting ``outputs`` directly sends plain widget state,
    which every front end renders. Later redraws (a control moved) are interactive's own.
    """

    def update(self, *args):
        if args or get_ipython() is None:
            return super().update(*args)
        self.kwargs = {w._kwarg: w.get_interact_value() for w in self.kwargs_widgets}
        outputs = []
        with capture_output() as cap:
            try:
                self.result = self.f(**self.kwargs)
            except Exception:  # noqa: BLE001 - shown in the panel, as interactive does
                self.result = None
                outputs.append(_error_output(*sys.exc_info()))
        streams = [{"output_type": "stream", "name": name, "text": text}
                   for name, text in (("stdout", cap.stdout), ("stderr", cap.stderr)) if text]
        shown = [_display_output(o.data, o.metadata) for o in cap.outputs]
        if self.result is not None:
            shown.append(_display_output(*get_ipython().display_formatter.format(self.result)))
        self.out.outputs = tuple(streams + shown + outputs)


def _display_output(data, metadata):
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _error_output(etype, value, tb):
    stb = get_ipython().InteractiveTB.structured_traceback(etype, value, tb)
    return {"output_type": "error", "ename": etype.__name__, "evalue": str(value), "traceback": stb}


def panel(fn, **controls):
    """Show ``controls`` in a column beside the live output of ``fn(**values)``.

    ``fn`` returns a matplotlib figure (closed); it is redrawn whenever a control
    changes. Returns the ``ipywidgets.interactive`` object: its ``children`` are the
    controls then the Output, ``result`` is the last figure (what tests inspect).
    """
    # auto_display: show the returned figure (interactive's default only calls fn).
    ui = _Interactive(fn, {"auto_display": True}, **controls)
    PANELS.append(ui)
    box = W.HBox([W.VBox(list(ui.children[:-1]), layout=W.Layout(min_width="360px")),
                  ui.children[-1]])
    display(box)
    return ui


__all__ = ["model_picker", "layer_picker", "channel_slider", "steps_slider", "int_slider",
           "float_slider", "strength_slider", "image_picker", "toggle", "dropdown", "text",
           "class_options", "class_picker", "Uploads", "panel", "SAMPLES"]
