"""Runtimes: the only parts of Symphony that touch the world."""
