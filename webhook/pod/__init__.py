"""Pod admission: a plan of what the pod needs, then one injector per concern."""
