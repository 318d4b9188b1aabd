"""The WebGL map: Arrow encoding (``encode``, no Streamlit) and the Streamlit component
(``component``), whose frontend lives in ``frontend/`` and is built to ``frontend/dist``."""
