"""Checks for the exercises in the notebooks: ``from helpers import exercises as check``.

Each notebook asks the student to write the core of its method; ``check.<name>(my_function)``
runs it on several inputs, compares it with the helpers' own implementation and prints a short
verdict: passed, not done yet, or what differs with a hint for the usual mistake.
"""
from .verdict import Case, Mismatch, Mistake, Verdict, close, run
from .filters import channel_tiles, kernel_tiles                          # 01
from .last_layer import nearest, precision_at_k                           # 02
from .activations import record, strongest_channels                       # 03
from .receptive_fields import receptive_field, unit_box                   # 04
from .occlusion import occlusion                                          # 05
from .saliency import saliency, smoothgrad                                # 06
from .guided_backprop import guided_backprop, guided_relu                 # 07
from .gradient_ascent import ascent_step                                  # 08
from .fooling import fgsm, pgd_step                                       # 09
from .deep_dream import dream_step, octave_dream                          # 10
from .inversion import gram, gram_loss, total_variation                   # 11
from .style_transfer import content_loss, style_transfer_loss             # 12
