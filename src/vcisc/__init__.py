"""VCISC."""
