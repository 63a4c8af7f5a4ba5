"""Channels beyond the page: campaign decisions for a whole audience (email content), search
results in personal order (rerank), and the settings they share (``channels:``). See
docs/channels.md."""
