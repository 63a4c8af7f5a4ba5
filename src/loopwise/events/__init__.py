"""Ingest stage: Segment-spec events, their validation and normalisation."""
