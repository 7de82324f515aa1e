import datetime

import matplotlib.pyplot as plt
import pytest
import torch

import helpers
from helpers import widgets


def test_channel_slider_range_follows_the_layer(model):
    layer = widgets.layer_picker(model, value="blocks.0")
    channel = widgets.channel_slider(model, layer, value=10)
    assert channel.max == 15  # blocks.0 has 16 channels
    layer.value = "act1"
    assert channel.max == 1279
    channel.value = 1000
    layer.value = "blocks.1"
    assert channel.max == 23 and channel.value <= 23


def test_layer_picker_lists_main_layers_and_rejects_nothing_silently(model):
    picker = widgets.layer_picker(model)
    assert list(picker.options) == helpers.main_layers(model)
    assert widgets.layer_picker(model, value="no-such").value in picker.options


def test_strength_slider_is_logarithmic():
    s = widgets.strength_slider(1e-3, -6, 0)
    assert s.min == -6 and s.max == 0 and s.value == pytest.approx(1e-3)


def test_panel_redraws_on_change_and_registers_itself():
    calls = []

    def draw(k):
        calls.append(k)
        fig, ax = plt.subplots()
        ax.plot(range(k))
        plt.close(fig)
        return fig
    ui = widgets.panel(draw, k=widgets.int_slider(3, 1, 10))
    assert ui in widgets.PANELS and calls == [3]
    first = ui.result
    ui.children[0].value = 7
    assert calls == [3, 7] and ui.result is not first


def test_model_picker_offers_only_what_loads_now():
    picker = widgets.model_picker()
    assert picker.value == "efficientnet_lite0"
    assert all(helpers.models.is_cached(n) for n in picker.options)


@pytest.fixture
def shell():
    """An IPython shell as in a kernel (get_ipython() answers), torn down afterwards."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    yield ip
    InteractiveShell.clear_instance()


class _Png:
    def _repr_png_(self):
        return b"\x89PNG fake"


def test_first_drawing_in_a_kernel_is_widget_state_not_captured_messages(shell, monkeypatch):
    # Captured display messages hang Voila at random (voila#1428): the first drawing must not
    # enter the Output widget's context; later redraws do, as ipywidgets.interactive does.
    entered = []
    monkeypatch.setattr(widgets.W.Output, "__enter__", lambda self: entered.append(self))
    monkeypatch.setattr(widgets.W.Output, "__exit__", lambda self, *a: None)

    def draw(k):
        print("drawing", k)
        return _Png()
    ui = widgets.panel(draw, k=widgets.int_slider(3, 1, 10))
    outputs = ui.children[-1].outputs
    assert entered == []
    assert [o["output_type"] for o in outputs] == ["stream", "display_data"]
    assert outputs[0]["text"] == "drawing 3\n" and "image/png" in outputs[1]["data"]
    ui.children[0].value = 4
    assert entered == [ui.children[-1]]


def test_first_drawing_error_shows_in_the_panel(shell):
    def draw(k):
        raise ValueError(f"channel {k} is out of range")
    ui = widgets.panel(draw, k=widgets.int_slider(3, 1, 10))
    error, = ui.children[-1].outputs
    assert error["output_type"] == "error" and error["ename"] == "ValueError"
    assert "channel 3 is out of range" in error["evalue"] and ui.result is None


def test_dropdown_defaults_to_the_first_option_and_keeps_a_valid_value():
    d = widgets.dropdown(["lbfgs", "adam"], "adam", "optimizer")
    assert isinstance(d, widgets.W.Dropdown) and d.value == "adam" and d.description == "optimizer"
    assert widgets.dropdown(["lbfgs", "adam"]).value == "lbfgs"
    assert widgets.dropdown(["lbfgs", "adam"], "sgd").value == "lbfgs"
    assert widgets.dropdown([("one", 1), ("two", 2)], 2).value == 2
    assert d.style.description_width == widgets.int_slider(1, 0, 2).style.description_width


def test_text_box_reports_only_finished_input():
    t = widgets.text(placeholder="type a class", description="search")
    assert t.value == "" and t.placeholder == "type a class" and t.continuous_update is False


def test_class_options_are_the_photos_top_classes(model):
    options = widgets.class_options(model, "coffee", k=3)
    top = helpers.predict(model, helpers.load_image("coffee", model.input_size), k=3)[0]
    assert [value for _, value in options] == [i for i, _, _ in top]
    assert options[0][0] == f"{top[0][1]} ({top[0][2]:.0%})"


def test_class_picker_follows_the_photo(model):
    photo = widgets.image_picker("chelsea")
    picker = widgets.class_picker(model, photo, k=3)
    assert list(picker.options) == widgets.class_options(model, "chelsea", k=3)
    assert picker.value == picker.options[0][1] and picker.description == "class"
    photo.value = "coffee"
    coffee = widgets.class_options(model, "coffee", k=3)
    assert list(picker.options) == coffee and coffee != widgets.class_options(model, "chelsea", k=3)
    assert picker.value == coffee[0][1]


def _png(color, size=(40, 30)):
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_resolve_uploaded_names_first_and_load_the_rest():
    calls = []

    def load(name, size):
        calls.append((name, size))
        return torch.zeros(3, size, size)
    uploads = widgets.Uploads(load, size=64)
    assert uploads("chelsea", 32).shape == (3, 32, 32) and calls == [("chelsea", 32)]
    picker = widgets.image_picker("chelsea", ["chelsea", "coffee"])
    box = uploads.box(picker, description="your photo")
    button, message = box.children
    button.value = ({"name": "red.png", "type": "image/png", "size": 0, "content": _png("red"),
                     "last_modified": datetime.datetime(2026, 1, 1)},)
    assert picker.value == "upload 1" and "upload 1" in picker.options and "upload 1" in uploads
    red = uploads("upload 1", 16)
    assert red.shape == (3, 16, 16) and calls == [("chelsea", 32)]
    assert red[0].min() > 0.9 and red[1:].max() < 0.1
    button.value = ({"name": "notes.txt", "type": "text/plain", "size": 0, "content": b"hello",
                     "last_modified": datetime.datetime(2026, 1, 1)},)
    assert "not an image" in message.value and picker.value == "upload 1"
