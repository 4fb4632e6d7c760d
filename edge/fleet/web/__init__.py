"""The desk views served by the collector (Starlette + Jinja2, run by uvicorn)."""
