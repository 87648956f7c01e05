"""The service's evaluator: the engine fed with pushed events as they come."""
