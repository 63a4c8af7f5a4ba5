"""Tests of loopwise.projection: the one fold, the projector, replay."""
