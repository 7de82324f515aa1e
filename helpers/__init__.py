"""Helpers for the course notebooks on looking inside convolutional neural networks."""
from .device import device, model_device
from .hooks import (LayerError, check_channel, get_layer, layers, leftover_hooks, main_layers,
                    num_channels, record)
from .images import (PHOTOS, SAMPLES, TEXTURES, ImageError, as_batch, load_image, resize,
                     save_image, to_numpy)
from .models import (ModelUnavailable, available_models, class_index, load_model, predict)
from .plotting import (feature_grid, image_and_maps, kernel_grid, normalize_each, overlay,
                       show_images, signed_map)
from .objectives import (Objective, channel, class_score, cross_entropy, diversity,
                         gram_similarity, l2, layer_norm, neuron, total_variation, tv,
                         weighted_sum)
from .params import fourier_image, image_param, pixel_image
from .regularizers import (BlurEvery, ClipSmallContribution, ClipSmallNorm, Decay, Jitter, Pad,
                           RandomRotate, RandomScale, Upsample, gaussian_blur,
                           standard_transforms)
from .optimize import Result, make_optimizer, optimize, preview
from .data import (DATASETS, DatasetUnavailable, ImageSet, digits, extract_features,
                   imagenet_samples, load_dataset, photos)
from .embedding import (compare_neighbours, grid_map, image_map, knn_accuracy, nearest, pca_2d,
                        precision_at_k, scatter_maps, show_maps, tsne_2d)
from .receptive_fields import ReceptiveField, receptive_field, receptive_field_plot
from .patches import channel_maxima, patch_grid, show_patches, top_patches, with_crops
from .inversion import alpha_norm, feature_distance, invert, invert_layers, inversion_figure
from .style import (StyleResult, gram, softmax_smooth, style_loss, style_targets,
                    style_transfer, synthesize_texture)
from .style_images import STYLES, StyleUnavailable, load_style, read_upload
from .transformer_net import ConditionalInstanceNorm, TransformerNet, mix_weights
from .fast_style import gamma_beta_figure, train_style
from .style_mixer import StyleMixer
from .attribution import (channels_by_activation, clip_map, deconvnet, gradient_image,
                          guided_backprop, occlusion, rectified_layers, saliency)
from .gradcam import cam_layers, grad_cam, guided_grad_cam
from .integrated_gradients import integrated_gradients, path_scores, score_difference
from .randomization import cascading_randomization, randomization_layers, rank_correlation
from .attribution_figures import (class_occlusion_figure, fills_figure,
                                  gradient_vs_smoothgrad_figure, neuron_figure, neurons_figure,
                                  occlusion_figure, randomization_figure, rules_figure,
                                  saliency_figure, smoothgrad_figure, grad_cam_figure,
                                  grad_cam_layers_figure, ig_path_figure,
                                  integrated_gradients_figure, saliency_methods_figure)
from .featurevis import (ablation_figure, batches_figure, multifaceted, multifaceted_figure,
                         preconditioning_figure, visualization_figure, visualize)
from .cppn import cppn_image
from .adversarial import fgsm, fgsm_error_rates, fooling_images, targeted_attack
from .dream import deep_dream, dream_figure
