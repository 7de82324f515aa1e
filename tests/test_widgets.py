import datetime

import matplotlib.pyplot as plt
import numpy as np
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
    channel.value = 5
    layer.value = "act1"  # back on a layer: its channel again (its picture is cached)
    assert channel.max == 1279 and channel.value == 1000
    layer.value = "blocks.1"
    assert channel.value == 5


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


@pytest.fixture
def figures_shell(shell):
    """The shell with matplotlib figures formatted as PNG, as the inline backend does in a kernel."""
    from IPython.core.pylabtools import select_figure_formats
    select_figure_formats(shell, {"png"})
    return shell


def _draw_counting(calls):
    def draw(k):
        calls.append(k)
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot(range(k))
        plt.close(fig)
        return fig
    return draw


def test_a_setting_shown_before_comes_back_without_calling_the_function(figures_shell):
    calls = []
    ui = widgets.panel(_draw_counting(calls), k=widgets.int_slider(3, 1, 10))
    slider, first = ui.children[0], ui.result
    first_png = ui.children[-1].outputs[-1]["data"]["image/png"]
    slider.value = 7
    seven = ui.result
    slider.value = 3  # back: from the panel's cache
    assert calls == [3, 7] and ui.result is first
    slider.value = 7
    assert calls == [3, 7] and ui.result is seven
    assert ui.memo[(("k", 3),)][1][0]["data"]["image/png"] == first_png  # the bytes shown first


def test_the_cache_keeps_only_the_latest_settings(shell, monkeypatch):
    monkeypatch.setattr(widgets, "CACHE_SIZE", 2)
    calls = []
    ui = widgets.panel(_draw_counting(calls), k=widgets.int_slider(1, 1, 10))
    for k in (2, 3, 1):
        ui.children[0].value = k
    assert calls == [1, 2, 3, 1] and len(ui.memo) == 2


def test_a_failed_drawing_is_not_cached(shell):
    calls = []

    def draw(k):
        calls.append(k)
        if k == 2:
            raise ValueError("no")
        return _draw_counting([])(k)
    ui = widgets.panel(draw, k=widgets.int_slider(2, 1, 10))
    ui.children[0].value = 3
    ui.children[0].value = 2
    assert calls == [2, 3, 2]


def test_every_photo_picker_in_a_panel_gets_an_upload_that_load_image_reads(shell, model):
    photo = widgets.image_picker("chelsea")
    classes = widgets.class_picker(model, photo, k=3)
    ui = widgets.panel(lambda photo, target: _Png(), photo=photo, target=classes)
    assert isinstance(photo.upload, widgets.W.VBox)
    button, _ = photo.upload.children
    assert isinstance(button, widgets.W.FileUpload) and ".png" in button.accept
    button.value = ({"name": "blue.jpg", "type": "image/jpeg", "size": 0,
                     "content": _png("blue", (60, 90)), "last_modified": datetime.datetime(2026, 1, 1)},)
    name = photo.value
    assert name.startswith("upload ") and name in photo.options and ui.kwargs["photo"] == name
    blue = helpers.load_image(name, 32)  # any helper that takes a photo name reads the upload
    assert blue.shape == (3, 32, 32) and blue[2].min() > 0.9 and blue[:2].max() < 0.1
    assert list(classes.options) == widgets.class_options(model, name, k=3)


@pytest.mark.parametrize("file, reason", [
    ({"name": "notes.txt", "content": b"hello"}, "not an image"),
    ({"name": "fake.png", "content": b"not really a png"}, "not an image PIL can read"),
    ({"name": "huge.png", "content": b"\x89PNG" + bytes(helpers.style_images.MAX_UPLOAD_BYTES)},
     "limit"),
    ({"name": "empty.png", "content": b""}, "empty"),
])
def test_uploads_that_are_not_images_or_too_large_are_refused(file, reason):
    photo = widgets.image_picker("chelsea")
    button, message = widgets.upload_box(photo).children
    options = list(photo.options)
    button.value = (dict(file, type="", size=len(file["content"]),
                         last_modified=datetime.datetime(2026, 1, 1)),)
    assert reason in message.value and file["name"] in message.value
    assert photo.value == "chelsea" and list(photo.options) == options


def test_save_png_writes_the_picture_shown(figures_shell, tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.setattr(widgets, "SAVE_DIR", tmp_path / "saved")
    ui = widgets.panel(_draw_counting([]), k=widgets.int_slider(3, 1, 10))
    first = widgets.save_png(ui)
    second = widgets.save_png(ui)
    assert first == tmp_path / "saved" / "draw-1.png" and second.name == "draw-2.png"
    with Image.open(first) as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_an_optimization_in_a_panel_records_frames_and_saves_a_gif(shell, tmp_path, model):
    from PIL import Image

    from helpers.objectives import channel
    from helpers.params import pixel_image

    def run(steps):
        r = helpers.optimize(model, pixel_image(32, seed=0), -channel("blocks.1", 0), steps=steps,
                             progress=False, every=2)
        return helpers.show_images([r.image[0]])
    ui = widgets.panel(run, steps=widgets.int_slider(6, 2, 10))
    assert len(ui.frames) == 6 and ui.frames[0].size == (32, 32)  # every step of a short run
    path = widgets.save_gif(ui.frames, tmp_path / "run.gif")
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6 and gif.info.get("loop") == 0
        gif.seek(5)
        last = np.asarray(gif.convert("RGB"), dtype=np.float32)
    shown = np.asarray(ui.frames[-1].convert("RGB"), dtype=np.float32)
    assert np.abs(last - shown).mean() < 8  # the run's last image (GIF palette aside)
    plain = widgets.panel(_draw_counting([]), k=widgets.int_slider(3, 1, 10))
    assert plain.frames == ()
    with pytest.raises(ValueError, match="at least 2 frames"):
        widgets.save_gif(plain.frames, tmp_path / "none.gif")


def test_a_first_drawing_from_a_helpers_cache_can_still_be_saved_as_a_gif(shell, model):
    from helpers.objectives import channel
    from helpers.optimize import frames_cache
    from helpers.params import pixel_image

    calls = []

    @frames_cache(maxsize=4)
    def figure(steps):  # as the helpers' cached figures (dream_figure, visualization_figure)
        calls.append(steps)
        r = helpers.optimize(model, pixel_image(32, seed=0), -channel("blocks.1", 0), steps=steps,
                             progress=False, every=2)
        return helpers.show_images([r.image[0]])
    figure(steps=6)  # the cell above the panel shows the default setting, as the panel calls it
    ui = widgets.panel(figure, steps=widgets.int_slider(6, 2, 10))
    assert calls == [6] and len(ui.frames) == 6  # no second run, and the GIF has its frames
    ui.children[0].value = 4
    assert calls == [6, 4] and len(ui.frames) == 4


def test_a_long_optimization_in_a_panel_shows_a_preview_then_only_the_figure(figures_shell,
                                                                             model, monkeypatch):
    from IPython.utils.capture import capture_output

    from helpers.objectives import channel
    from helpers.optimize import preview
    from helpers.params import pixel_image

    shown, show = [], preview.__call__
    monkeypatch.setattr(preview, "__call__",
                        lambda self, step, *a: (shown.append(step), show(self, step, *a))[1])

    def run(steps):
        r = helpers.optimize(model, pixel_image(32, seed=0), -channel("blocks.1", 0), steps=steps,
                             progress=False, every=2)
        return helpers.show_images([r.image[0]])
    ui = widgets.panel(run, steps=widgets.int_slider(4, 2, 10))
    assert shown == []  # the first drawing (while the cell runs) keeps only the figure
    monkeypatch.setattr(widgets, "LIVE_AFTER_S", 0.0)  # every run counts as long
    with capture_output() as cap:
        ui.children[0].value = 6
    assert shown[:1] == [1] and "/6" in cap.stderr  # preview and progress bar while it ran
    assert [o.data["text/plain"][:7] for o in cap.outputs] == ["<Figure"]  # then the figure alone
    assert len(ui.frames) == 6
    shown.clear()
    monkeypatch.setattr(widgets, "LIVE_AFTER_S", 60.0)  # a short run shows neither
    with capture_output() as cap:
        ui.children[0].value = 8
    assert shown == [] and cap.stderr == ""
    assert [o.data["text/plain"][:7] for o in cap.outputs] == ["<Figure"]
