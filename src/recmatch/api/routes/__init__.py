"""Route modules: thin parse → service call → shape."""
