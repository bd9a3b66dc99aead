"""The web viewer of `glioseg serve`: the FastAPI app (app.py), safe handling of uploads (uploads.py) and the page
with NiiVue (static/)."""
