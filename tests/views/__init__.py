"""Tests of loopwise.views: the bounded in-memory views, changed only after commit."""
