"""Bundled hardware, price, attenuation and model catalogs, and their loader."""
