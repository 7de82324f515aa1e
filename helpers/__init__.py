"""Helpers for the course notebooks on looking inside convolutional neural networks."""
from .device import device
from .hooks import (LayerError, check_channel, get_layer, layers, leftover_hooks, main_layers,
                    num_channels, record)
from .images import PHOTOS, SAMPLES, TEXTURES, ImageError, load_image, save_image, to_numpy
from .models import (ModelUnavailable, available_models, class_index, load_model, predict)
from .plotting import (feature_grid, image_and_maps, kernel_grid, normalize_each, overlay,
                       show_images)
from .objectives import (Objective, channel, class_score, cross_entropy, l2, layer_norm, neuron,
                         total_variation, tv, weighted_sum)
from .params import fourier_image, pixel_image
from .regularizers import (blur_every, clip_small_contribution, clip_small_norm, decay,
                           gaussian_blur, jitter, random_rotate, random_scale,
                           standard_transforms, upsample)
from .optimize import Result, optimize, preview
from .data import DATASETS, DatasetUnavailable, ImageSet, digits, features, load_dataset, photos
from .embedding import (compare_neighbours, grid_map, image_map, knn_accuracy, nearest, pca_2d,
                        precision_at_k, scatter_maps, show_maps, tsne_2d)
from .patches import (ReceptiveField, channel_maxima, patch_grid, receptive_field, show_patches,
                      top_patches, with_crops)
from .inversion import alpha_norm, feature_distance, invert, invert_layers, inversion_figure
from .style import (gram, softmax_smooth, style_loss, style_targets, style_transfer,
                    synthesize_texture)
from .style_images import STYLES, StyleUnavailable, load_style, read_upload
from .attribution import (cascading_randomization, channels_by_activation, clip_map, deconvnet,
                          gradient_image, guided_backprop, occlusion, randomization_layers,
                          rectified_layers, saliency)
from .featurevis import ablation_figure, multifaceted_figure, visualization_figure, visualize
from .adversarial import fgsm, fgsm_error_rates, fooling_images, targeted_attack
from .dream import deep_dream, dream_figure
