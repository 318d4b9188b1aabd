"""Latent Lens compute backend: storage, jobs and the algorithms behind every panel.

Never imports Streamlit: usable from notebooks, scripts and the HTTP service.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
