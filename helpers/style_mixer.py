"""A live panel that blends two styles of a conditional network on a photo (Dumoulin et al., Fig. 7).

The picture is an ``ipywidgets.Image`` fed with JPEG bytes: one forward pass of the style
network and a JPEG encode per slider move, no matplotlib redraw, so the picture follows the
slider.
"""
import io
import time

import numpy as np
import torch

from .fast_style import stylize
from .images import PHOTOS, load_image, to_numpy


def jpeg_bytes(image, quality=90):
    """A (3, H, W) or (1, 3, H, W) image in [0, 1] as JPEG bytes (for ``ipywidgets.Image``)."""
    from PIL import Image
    image = image[0] if image.dim() == 4 else image
    buf = io.BytesIO()
    Image.fromarray((to_numpy(image) * 255).round().astype(np.uint8)).save(
        buf, format="JPEG", quality=quality)
    return buf.getvalue()


def mix(net, a, b, t):
    """``{a: 1 - t, b: t}``: the convex mix of two of the network's styles (one style if a == b)."""
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"The mix position must be in [0, 1], got {t}.")
    return {a: 1.0} if a == b else {a: 1.0 - t, b: t}


class StyleMixer:
    """Photo picker (with upload), two style pickers and a mix slider, redrawn live.

    Args:
        net: a conditional ``TransformerNet`` (``fast_style.shipped()``).
        load: ``load(name, size)`` -> (3, size, size) photo; ``widgets.Uploads`` adds uploads.
        photos: the photo names offered; size: the picture's side in pixels.
        a, b, t: the styles and the mix position at the start.
    Attributes:
        widget: the panel (``display(mixer)`` shows it); ``last_seconds``: the time of the
        last redraw (stylize + encode + hand the bytes to the image widget).
    """

    def __init__(self, net, load=load_image, photos=None, size=256, a=None, b=None, t=0.5,
                 photo=None, upload=None):
        import ipywidgets as W
        self.net, self.load, self.size = net, load, int(size)
        styles = list(net.styles)
        photos = list(photos or PHOTOS)
        self._photos = {}
        layout = W.Layout(width="300px")
        self.photo = W.Dropdown(options=photos, value=photo or photos[0], description="photo",
                                layout=layout)
        self.style_a = W.Dropdown(options=styles, value=a or styles[0], description="style A",
                                  layout=layout)
        self.style_b = W.Dropdown(options=styles, value=b or styles[min(1, len(styles) - 1)],
                                  description="style B", layout=layout)
        self.t = W.FloatSlider(value=t, min=0.0, max=1.0, step=0.05, description="A → B",
                               continuous_update=True, layout=layout, readout_format=".2f")
        self.image = W.Image(format="jpeg", width=self.size, height=self.size)
        self.status = W.HTML()
        controls = [self.photo]
        if upload is not None:  # e.g. widgets.Uploads(...).box, adds "upload 1" to the picker
            controls.append(upload(self.photo))
        controls += [self.style_a, self.style_b, self.t, self.status]
        self.widget = W.HBox([W.VBox(controls), self.image])
        for c in (self.photo, self.style_a, self.style_b, self.t):
            c.observe(lambda change: self.redraw(), names="value")
        self.last_seconds = float("nan")
        self.redraw()

    def _photo(self, name):
        if name not in self._photos:
            self._photos[name] = self.load(name, self.size)
        return self._photos[name]

    def picture(self):
        """The current stylized photo, (1, 3, size, size) in [0, 1]."""
        return stylize(self.net, self._photo(self.photo.value),
                       mix(self.net, self.style_a.value, self.style_b.value, self.t.value))

    def redraw(self):
        start = time.perf_counter()
        try:
            self.image.value = jpeg_bytes(self.picture())
        except Exception as err:  # shown in the panel, as a front end would
            self.status.value = f"<span style='color:#b00'>{type(err).__name__}: {err}</span>"
            return
        self.last_seconds = time.perf_counter() - start
        w = mix(self.net, self.style_a.value, self.style_b.value, self.t.value)
        self.status.value = " + ".join(f"{v:.2f} {k}" for k, v in w.items())

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


@torch.inference_mode()
def mix_row(net, photo, a, b, steps=5):
    """The photo stylized at ``steps`` evenly spaced mixes from style ``a`` to style ``b``."""
    return [stylize(net, photo, mix(net, a, b, t))[0] for t in np.linspace(0, 1, steps)]


__all__ = ["StyleMixer", "jpeg_bytes", "mix", "mix_row"]
