"""Latent Lens: entry point. Routes only; each page lives in app/views/."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

# A local icon: a ":material/...:" page icon makes the browser fetch the favicon from
# fonts.gstatic.com (Streamlit's frontend builds that URL), and the app works offline.
ICON = Path(__file__).parent / "assets" / "favicon.png"
st.set_page_config(page_title="Latent Lens", page_icon=str(ICON), layout="wide")

VIEWS = Path(__file__).parent / "views"
# the default page is served at `/`; its own pathname ("home") stays reserved, so `/map`
# is free for the alias below
MAP = st.Page(VIEWS / "map.py", title="Map", icon=":material/scatter_plot:", default=True,
              url_path="home")


def _map_alias() -> None:
    """`/map?...` (a link typed or kept from an older version): the Map page, same query."""
    st.switch_page(MAP, query_params=st.query_params.to_dict())


pages = {
    "Explore": [
        MAP,
        st.Page(VIEWS / "upload.py", title="Upload", icon=":material/upload_file:", url_path="upload"),
        st.Page(VIEWS / "datasets.py", title="Datasets", icon=":material/folder_open:", url_path="datasets"),
    ],
    "Model health": [
        st.Page(VIEWS / "health.py", title="Weights", icon=":material/monitor_heart:",
                url_path="health"),
    ],
}
pages["Geo"] = [
    st.Page(VIEWS / "globe.py", title="Globe", icon=":material/public:", url_path="globe"),
]
pages["Graphs"] = [
    st.Page(VIEWS / "graph.py", title="Graph", icon=":material/hub:", url_path="graph"),
]
pages["Explore"].append(
    st.Page(VIEWS / "text.py", title="Text", icon=":material/text_fields:", url_path="text"))
# Streamlit serves the default page only at `/`; without this hidden alias `/map` says
# "Page not found" (issue 17, item 6).
pages["Explore"].append(st.Page(_map_alias, title="Map", url_path="map", visibility="hidden"))
st.navigation(pages).run()
