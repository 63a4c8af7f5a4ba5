"""Content: catalog items that list slots choose from."""
