"""Alignment settings: plain dataclasses, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ConConfig:
    kd_weight: float = 0.01  # published common value; presets tune it per dataset
    kd_temperature: float = 0.2  # InfoNCE temperature of the alignment term


@dataclass
class GenConfig:
    mask_ratio: float = 0.1  # share of ALL nodes (users and items) masked per batch
    recon_weight: float = 0.1  # weight of the reconstruction contrast
    re_temperature: float = 0.2  # its temperature
