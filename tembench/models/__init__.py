"""Video networks: hosts (ResNet, CLIP ViT, UniFormer) with named slots, and the temporal modules that
plug into them through one protocol (:mod:`tembench.models.protocol`).

Importing the package registers the built-in temporal modules (:mod:`tembench.models.temporal`).
"""
from tembench.models import temporal as _temporal  # noqa: F401  (registers the built-in temporal modules)
