"""Allocation: the faithful static allocator, the Cont–Kukanov model, its exact solver and outflow samples."""
