"""Helpers for the course notebooks on looking inside convolutional neural networks."""
from .device import device
from .hooks import (LayerError, check_channel, get_layer, layers, leftover_hooks, main_layers,
                    num_channels, record)
from .images import PHOTOS, SAMPLES, TEXTURES, ImageError, load_image, save_image, to_numpy
from .models import (ModelUnavailable, available_models, class_index, load_model, predict)
from .plotting import (feature_grid, image_and_maps, kernel_grid, normalize_each, overlay,
                       show_images)
