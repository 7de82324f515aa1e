"""Checks for the exercises in the notebooks: ``from helpers import exercises as check``.

Each notebook asks the student to write the core of its method; ``check.<name>(my_function)``
runs it on several inputs, compares it with the helpers' own implementation and prints a short
verdict: passed, not done yet, or what differs with a hint for the usual mistake.
"""
from .verdict import Case, Mismatch, Mistake, Verdict, close, run
from .filters import *           # 01
from .last_layer import *        # 02
from .activations import *       # 03
from .receptive_fields import *  # 04
from .occlusion import *         # 05
from .saliency import *          # 06
from .guided_backprop import *   # 07
from .gradient_ascent import *   # 08
from .fooling import *           # 09
from .deep_dream import *        # 10
from .inversion import *         # 11
from .style_transfer import *    # 12
