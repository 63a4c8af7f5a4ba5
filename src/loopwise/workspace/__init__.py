"""The workspace as the engine runs it: compiled once per change, swapped whole."""
