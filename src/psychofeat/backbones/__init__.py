"""Backbones: network trunks with reference parameter names, human layer names and their preprocessing."""

from psychofeat.backbones.base import (
    CAFFE_VGG,
    IDENTITY,
    TORCHVISION,
    Backbone,
    Preprocessing,
    WeightsInfo,
    from_module,
)
from psychofeat.backbones.load import load_backbone
from psychofeat.backbones.registry import ModelSpec, available_models, get_spec, register_model

__all__ = [
    "CAFFE_VGG",
    "IDENTITY",
    "TORCHVISION",
    "Backbone",
    "ModelSpec",
    "Preprocessing",
    "WeightsInfo",
    "available_models",
    "from_module",
    "get_spec",
    "load_backbone",
    "register_model",
]
