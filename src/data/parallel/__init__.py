"""Parallel text for translation (Multi30k) and synthetic sequence-to-sequence tasks."""
