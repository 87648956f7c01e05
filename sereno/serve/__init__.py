"""`sereno serve`'s HTTP side: the ASGI app, its answers and its status page."""
