"""Simulated service-counter fixtures for Madoguchi's front end (see counter.py, score.py)."""
