"""Campsite: hourly temperatures at campgrounds, interpolated from nearby weather stations."""
