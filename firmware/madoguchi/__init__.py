"""Madoguchi: offline counter interpreter firmware for a Raspberry Pi 5 box."""

__version__ = "0.1.0"
