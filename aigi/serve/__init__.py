"""``aigi serve``: the HTTP API and web page (FastAPI), with micro-batching onto one loaded detector."""
