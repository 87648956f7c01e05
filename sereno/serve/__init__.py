"""`sereno serve`'s HTTP side: the ASGI app and its routes, the handlers, their answers and
parameters, the status page, the metrics, the bearer tokens and rules reload."""
