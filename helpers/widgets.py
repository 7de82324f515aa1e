"""ipywidgets building blocks shared by every notebook's "Explore" panel.

A panel is a thin wrapper around a pure function returning a figure: the
notebook calls the function once with defaults (so headless runs exercise it)
and ``panel`` wires the same function to sliders. ``panel`` keeps each setting's
picture as encoded PNG bytes, so a control moved back to a setting already shown
redraws without calling the function or matplotlib; it adds an upload button under
every photo picker and buttons that save the picture (PNG) and an optimization's
run (animated GIF).
"""
import collections
import functools
import html
import sys
from pathlib import Path

import ipywidgets as W
from IPython import get_ipython
from IPython.display import clear_output, display
from IPython.utils.capture import capture_output
from ipywidgets.widgets.interaction import show_inline_matplotlib_plots

from . import hooks, models
from .images import PHOTOS, SAMPLES, center_crop_resize, load_image
from .optimize import live_runs
from .plotting import save_gif
from .style_images import upload_box as _upload_box

PANELS = []  # every panel shown in this kernel, so tests can drive them all
CACHE_SIZE = 32  # pictures a panel keeps (the latest settings), as PNG bytes and the figure
SAVE_DIR = Path("saved")  # where the save buttons write, relative to the notebook's folder
UPLOAD_SIZE = 512  # uploads are kept as their central square at this side
LIVE_AFTER_S = 2.0  # a redraw running longer shows a progress bar and a preview of the image
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
    """Channel slider whose range follows the layer picker.

    Each layer keeps its own channel: back on a layer, the slider returns to the channel it
    had there, so the panel shows (from its cache) the picture it showed before.
    """
    n = functools.lru_cache(maxsize=None)(lambda layer: hooks.num_channels(model, layer, size))
    slider = W.IntSlider(value=value, min=0, max=n(layer_widget.value) - 1, description=description,
                         style=_STYLE, layout=_LAYOUT, continuous_update=False)
    last = {}

    def follow(change):
        last[change["old"]] = slider.value
        slider.max = n(change["new"]) - 1  # ipywidgets clamps value into the new range
        if change["new"] in last:
            slider.value = min(last[change["new"]], slider.max)
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


class PhotoPicker(W.Dropdown):
    """A dropdown of photo names; ``panel`` puts an upload button under it (``upload_box``)."""

    upload = None  # the upload box once one was made for this picker


def image_picker(value="chelsea", options=None, description="photo"):
    """Dropdown of the sample photos that ship with the dependencies, plus the student's uploads.

    Inside a ``panel`` it gets an upload button (see ``upload_box``): an uploaded photo becomes
    a new option ``"upload 1"``... that ``helpers.load_image`` reads like a sample.
    """
    options = list(options or PHOTOS)
    return PhotoPicker(options=options, value=value, description=description, style=_STYLE,
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

    ``photo``: a name known to ``load_image`` (a sample photo or an upload), read at the
    model's input size. Kept per model and photo: a photo picked again is instant.
    """
    return list(_class_options(model, photo, k, size or getattr(model, "input_size", 224)))


@functools.lru_cache(maxsize=64)
def _class_options(model, photo, k, size):
    image = load_image(photo, size)
    return tuple((f"{name} ({p:.0%})", i) for i, name, p in models.predict(model, image, k=k)[0])


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


class _Uploaded(dict):
    """Uploads of this kernel by name; each also becomes a sample that ``load_image`` reads."""

    def __setitem__(self, name, image):
        super().__setitem__(name, image)
        array = image.permute(1, 2, 0).numpy()  # (H, W, 3) in [0, 1], what a sample loader gives
        SAMPLES[name] = lambda: array


UPLOADED = _Uploaded()  # one store for every picker, so "upload N" names one photo per kernel


def upload_box(picker, description="your photo", size=None):
    """The shared upload: a FileUpload and a message line under the dropdown ``picker``.

    A valid image (see ``helpers.read_upload``: image formats only, size-capped) is kept as its
    central square and added to ``picker`` as ``"upload 1"``, ``"upload 2"``... and selected;
    ``helpers.load_image`` reads that name like a sample, so every function that takes a photo
    name takes it. Anything else is refused with the reason in the message line.
    """
    box = _upload_box(picker, UPLOADED, size=size or UPLOAD_SIZE, description=description)
    if isinstance(picker, PhotoPicker):
        picker.upload = box
    return box


class Uploads:
    """Images uploaded in this kernel, by name, and the resolver that panels call.

    ``Uploads(load)`` wraps ``load(name, size)`` (how other names are read); ``uploads(name,
    size)`` returns the upload ``name`` (central square at ``size``) or ``load(name, size)``;
    ``uploads.box(picker)`` is the shared upload (``upload_box``) for the dropdown ``picker``.
    """

    def __init__(self, load=load_image, size=UPLOAD_SIZE):
        self.load, self.size, self.images = load, size, UPLOADED

    def __contains__(self, name):
        return name in self.images

    def __call__(self, name, size):
        if name in self.images:
            return center_crop_resize(self.images[name], size)
        return self.load(name, size)

    def box(self, picker, description="your image"):
        """A FileUpload and a message line; a valid upload becomes ``picker``'s new value."""
        return upload_box(picker, description=description, size=self.size)


class _Interactive(W.interactive):
    """``ipywidgets.interactive`` that keeps each setting's picture and draws it once.

    The first drawing runs while the cell executes; interactive shows it by capturing display
    messages into the Output widget, which a notebook-executing front end (Voila, nbclient)
    has to mimic, and Voila 0.5 then sometimes waits forever for the cell's reply
    (voila-dashboards/voila#1428). Setting ``outputs`` directly sends plain widget state,
    which every front end renders. Later redraws (a control moved) go through the Output
    widget's context as interactive's do; long optimizations show their progress there.

    The last ``CACHE_SIZE`` settings keep their output (PNG bytes), figure and frames: a setting
    shown before comes back without calling the function or matplotlib.
    """

    frames = ()  # the last drawing's optimization frames (PIL images), for the GIF button
    on_drawn = None  # called after every drawing (the panel's buttons follow it)

    @property
    def memo(self):
        if "_memo" not in self.__dict__:
            self._memo = collections.OrderedDict()
        return self._memo

    def update(self, *args):
        self.kwargs = {w._kwarg: w.get_interact_value() for w in self.kwargs_widgets}
        key = _key(self.kwargs)
        inline = not args and get_ipython() is not None  # the cell is running
        hit = self.memo.get(key) if key is not None else None
        if hit is not None:
            self.memo.move_to_end(key)
            self.result, outputs, self.frames = hit
            self._show(outputs, inline)
        else:
            drawn = self._draw_inline() if inline else self._draw_live()
            if drawn is not None and key is not None and CACHE_SIZE > 0:
                self.memo[key] = (self.result, drawn, self.frames)
                while len(self.memo) > CACHE_SIZE:
                    self.memo.popitem(last=False)
        if self.on_drawn is not None:
            self.on_drawn()

    def _show(self, outputs, inline):
        if inline or get_ipython() is None:
            self.out.outputs = tuple(outputs)
            return
        with self.out:
            clear_output(wait=True)
            for o in outputs:
                display(o["data"], metadata=o["metadata"], raw=True)

    def _draw_inline(self):
        """The first drawing, as widget state; returns the outputs to keep (None: an error)."""
        error = None
        with capture_output() as cap, live_runs(show=False) as runs:
            try:
                self.result = self.f(**self.kwargs)
                show_inline_matplotlib_plots()
            except Exception:  # noqa: BLE001 - shown in the panel, as interactive does
                self.result = None
                error = _error_output(*sys.exc_info())
        self.frames = tuple(runs.frames)
        streams = [{"output_type": "stream", "name": name, "text": text}
                   for name, text in (("stdout", cap.stdout), ("stderr", cap.stderr)) if text]
        shown = [_display_output(o.data, o.metadata) for o in cap.outputs]
        kept = _formatted(self.result)
        self.out.outputs = tuple(streams + shown + kept + ([error] if error else []))
        return None if error else kept

    def _draw_live(self):
        """A redraw after a control moved: progress and previews show while it runs."""
        ip = get_ipython()
        if ip is None:  # plain Python (scripts, tests): nothing to show, as interactive
            try:
                with live_runs(show=False) as runs:
                    self.result = self.f(**self.kwargs)
            except Exception:
                self.log.warning("Exception in the panel's function", exc_info=True)
                return None
            self.frames = tuple(runs.frames)
            return []
        with self.out:
            clear_output(wait=True)  # the old picture stays until the next output arrives
            try:
                with live_runs(after_s=LIVE_AFTER_S) as runs:
                    result = self.f(**self.kwargs)
                    show_inline_matplotlib_plots()
                kept = _formatted(result)
            except Exception:  # noqa: BLE001 - shown in the panel, as interactive does
                ip.showtraceback()
                return None
            clear_output(wait=True)  # progress bars and previews make way for the picture
            for o in kept:
                display(o["data"], metadata=o["metadata"], raw=True)
        self.result, self.frames = result, tuple(runs.frames)
        return kept


def _key(kwargs):
    """A hashable key of the controls' values (None: some value is not hashable).

    Floats count to 12 significant digits: a log slider moved right and back left returns to
    10 ** (e + step - step), which can differ from 10 ** e in the last bit.
    """
    key = tuple(sorted((k, float(f"{v:.12g}") if isinstance(v, float) else v)
                       for k, v in kwargs.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _formatted(result):
    """The result as display outputs (PNG bytes and text for a figure); () for None."""
    ip = get_ipython()
    if result is None or ip is None:
        return []
    return [_display_output(*ip.display_formatter.format(result))]


def _display_output(data, metadata):
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _error_output(etype, value, tb):
    stb = get_ipython().InteractiveTB.structured_traceback(etype, value, tb)
    return {"output_type": "error", "ename": etype.__name__, "evalue": str(value), "traceback": stb}


def _free_path(stem, suffix):
    SAVE_DIR.mkdir(parents=True, exist_ok=True)
    n = 1
    while (SAVE_DIR / f"{stem}-{n}{suffix}").exists():
        n += 1
    return SAVE_DIR / f"{stem}-{n}{suffix}"


def save_png(ui, path=None):
    """Write the panel's current picture as PNG (``SAVE_DIR/<function>-N.png``); returns the path."""
    if ui.result is None:
        raise ValueError("The panel shows no picture to save (its last drawing failed).")
    path = Path(path) if path is not None else _free_path(ui.f.__name__, ".png")
    if hasattr(ui.result, "savefig"):
        ui.result.savefig(path, format="png", dpi=150, bbox_inches="tight")
    else:
        data = _formatted(ui.result)
        if not data or "image/png" not in data[0]["data"]:
            raise ValueError(f"The panel shows a {type(ui.result).__name__}, not a picture.")
        png = data[0]["data"]["image/png"]
        path.write_bytes(png if isinstance(png, bytes) else __import__("base64").b64decode(png))
    return path


def _buttons(ui):
    """"Save PNG" and "Save GIF" (shown when the drawing recorded an optimization) and a note."""
    folder = f"{SAVE_DIR}/ beside the notebook"
    png = W.Button(description="Save PNG", icon="download", tooltip=f"save the figure in {folder}",
                   layout=W.Layout(width="110px"))
    gif = W.Button(description="Save GIF", icon="film", tooltip=f"save the run as a GIF in {folder}",
                   layout=W.Layout(width="110px"))
    note = W.HTML(f"<small>files go into {html.escape(folder)}</small>")

    def saved(save):
        try:
            path = save()
            note.value = f"<small>saved <b>{html.escape(str(path))}</b></small>"
        except (OSError, ValueError) as err:
            note.value = f"<small style='color:#b00'>{html.escape(str(err))}</small>"

    png.on_click(lambda _: saved(lambda: save_png(ui)))
    gif.on_click(lambda _: saved(lambda: save_gif(ui.frames, _free_path(ui.f.__name__, ".gif"))))

    def follow():
        gif.layout.display = None if len(ui.frames) > 1 else "none"
    ui.on_drawn = follow
    follow()
    return [W.HBox([png, gif]), note]


def panel(fn, **controls):
    """Show ``controls`` in a column beside the live output of ``fn(**values)``.

    ``fn`` returns a matplotlib figure (closed); it is redrawn whenever a control changes,
    and a setting shown before comes back from the panel's cache (``CACHE_SIZE``) without
    calling ``fn``. Under every photo picker (``image_picker``) that has none yet goes an
    upload button (``upload_box``); under the controls, buttons that save the picture as PNG
    and, when the drawing ran an optimization, the run as a GIF (into ``SAVE_DIR``).
    Returns the ``ipywidgets.interactive`` object: its ``children`` are the controls then the
    Output, ``result`` is the last figure (what tests inspect), ``frames`` the run's frames.
    """
    # auto_display: show the returned figure (interactive's default only calls fn).
    ui = _Interactive(fn, {"auto_display": True}, **controls)
    PANELS.append(ui)
    column = []
    for control in ui.children[:-1]:
        column.append(control)
        if isinstance(control, PhotoPicker) and control.upload is None:
            column.append(upload_box(control, description="your photo"))
    column += _buttons(ui)
    box = W.HBox([W.VBox(column, layout=W.Layout(min_width="360px")), ui.children[-1]])
    display(box)
    return ui


__all__ = [
    "CACHE_SIZE",
    "SAMPLES",
    "SAVE_DIR",
    "UPLOADED",
    "PhotoPicker",
    "Uploads",
    "channel_slider",
    "class_options",
    "class_picker",
    "dropdown",
    "float_slider",
    "image_picker",
    "int_slider",
    "layer_picker",
    "model_picker",
    "panel",
    "save_gif",
    "save_png",
    "steps_slider",
    "strength_slider",
    "text",
    "toggle",
    "upload_box",
]
