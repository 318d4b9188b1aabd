"""Upload: bring your own vectors (CSV, TSV, Parquet, NPY, NPZ, AnnData .h5ad) and project them."""

import hashlib

import streamlit as st
from streamlit.runtime.uploaded_file_manager import DeletedFile

from app.common import client, current_dataset, select_dataset
from backend.errors import LatentLensError
from backend.kinds import (DECIMALS, ENCODINGS, FORMATS, SEPARATORS, describe_roles,
                           inspect_upload, max_upload_bytes, params_of)

# the choices made for one file: a new file starts from its own detected defaults, and
# other columns (another separator or header choice) from theirs
COLUMN_KEYS = ("upload_text", "upload_id", "upload_mode", "upload_cols", "upload_list_col",
               "upload_lat", "upload_lon")
CHOICE_KEYS = ("upload_sep", "upload_decimal", "upload_encoding", "upload_first_row_data",
               "upload_array", "upload_name", *COLUMN_KEYS)
NONE = "(none)"


@st.cache_data(max_entries=8, show_spinner="Reading the file…")
def _inspect(digest: str, filename: str, read: tuple, _data: bytes):
    """The file's preview, computed once per content and reading options (``digest`` keys it)."""
    try:
        return inspect_upload(_data, filename, **dict(read)), None
    except LatentLensError as e:
        return None, str(e)


def _drop_id_from_vectors() -> None:
    """The id column chosen is no vector column: take it out of the vector choice."""
    state = st.session_state
    if "upload_cols" in state:
        state["upload_cols"] = [c for c in state["upload_cols"] if c != state.get("upload_id")]


def _say_if_lost(key: str) -> bool:
    """The browser still shows a file the server no longer has (it restarted, or the session
    expired): Streamlit then returns no file, silently. Say so and what to do (issue 17, item 7)."""
    lost = isinstance(st.session_state.get(key), DeletedFile)
    if lost:
        st.warning("The file shown above is no longer on the server (the app was restarted or "
                   "this session expired), so nothing was read or stored. Remove it with × and "
                   "choose it again.", icon=":material/sync_problem:")
    return lost


def _swap_coordinates() -> None:
    state = st.session_state
    state["upload_lat"], state["upload_lon"] = state.get("upload_lon"), state.get("upload_lat")


c = client()
current_dataset()
state = st.session_state
st.title("Upload a dataset")
st.markdown(
    "A table whose numeric columns (or one column of lists) are the vectors, a NumPy array "
    "with an optional metadata CSV of the same length, an AnnData `.h5ad` file (`X` or an "
    "`obsm` embedding, `obs` as metadata); or a table with a column of texts to embed. "
    "Everything is checked before anything "
    f"is stored. Limit: {max_upload_bytes() / 2**20:,.0f} MB."
)

up = st.file_uploader("Vectors file", key="upload_file",
                      help="Accepted: " + ", ".join("." + f for f in FORMATS) + ".")
if up is None:
    _say_if_lost("upload_file")
    st.stop()
data = up.getvalue()
if state.get("_upload_seen", (None,))[0] != up.file_id:  # a new file: hash it once
    state["_upload_seen"] = (up.file_id, hashlib.blake2b(data, digest_size=16).hexdigest())
    for key in CHOICE_KEYS:
        state.pop(key, None)
digest = state["_upload_seen"][1]
preview, error = _inspect(digest, up.name, (), data)
if error:
    st.error(error)
    st.stop()

read = {}
if preview.text_format is not None:
    detected = preview.text_format
    a, b, e, h = st.columns(4, vertical_alignment="bottom")
    seps, decimals = list(SEPARATORS), list(DECIMALS)
    sep = a.selectbox("Separator", seps, index=seps.index(detected.sep), format_func=SEPARATORS.get,
                      key="upload_sep")
    decimal = b.selectbox("Decimal mark", decimals, index=decimals.index(detected.decimal),
                          format_func=DECIMALS.get, key="upload_decimal")
    encoding = e.selectbox("Encoding", ENCODINGS, index=ENCODINGS.index(detected.encoding),
                           key="upload_encoding")
    first_row_data = h.checkbox(
        "First row is data", value=not detected.header, key="upload_first_row_data",
        help="Off: the first row names the columns. On: it is the first vector, and the columns "
             "are named column_1, column_2, … Detected from the file: "
             + ("a header." if detected.header else "numbers, so data."))
    chosen = {"sep": sep, "decimal": decimal, "encoding": encoding, "header": not first_row_data}
    if chosen != {"sep": detected.sep, "decimal": detected.decimal,
                  "encoding": detected.encoding, "header": detected.header}:
        read = chosen
        preview, error = _inspect(digest, up.name, tuple(sorted(read.items())), data)
        if error:
            st.error(error)
            st.stop()

if state.get("_upload_columns") != (digest, preview.columns):
    state["_upload_columns"] = (digest, preview.columns)
    for key in COLUMN_KEYS:
        state.pop(key, None)

st.markdown(f"**{up.name}** · {preview.format.upper()} · {preview.n_rows:,} rows")
if preview.text_format is not None:
    st.caption(f"Read as {preview.text_format.describe()}.")
for note in preview.notes:
    st.warning(note)

if preview.format not in ("npy", "npz", "h5ad"):
    text_choices = [col for col in preview.columns
                    if col not in preview.numeric_columns and col not in preview.list_columns]
    text_col = st.selectbox(
        "Text column to embed (optional)", [NONE, *text_choices], key="upload_text",
        help="A table of texts instead of vectors: the chosen column is embedded on the Text page "
             "(all-MiniLM-L6-v2); the other columns are kept for search filters. No numeric "
             "column is needed.")
    if text_col != NONE:
        st.dataframe(preview.head, hide_index=True)
        id_col = st.selectbox("Id column (optional, must be unique)", [NONE, *preview.columns],
                              key="upload_id")
        name = st.text_input("Name", up.name.rsplit(".", 1)[0], key="upload_name")
        if st.button("Add text dataset", type="primary", key="upload_add"):
            try:
                with st.spinner("Validating and storing…"):
                    info, notes = c.add_text_upload(
                        data, up.name, text_column=text_col, name=name,
                        id_column=None if id_col == NONE else id_col, **read)
            except LatentLensError as e:
                st.error(str(e))
                st.stop()
            select_dataset(info.id)
            st.success(f"Stored **{info.name}**: {info.n_rows:,} rows with texts in {text_col!r}.")
            for note in notes:
                st.warning(note)
            st.page_link("views/text.py", label="Embed it on the Text page",
                         icon=":material/text_fields:")
        st.stop()

options = dict(read)
meta_file = None
if preview.arrays and (preview.format == "h5ad" or len(preview.arrays) > 1):
    options["array_key"] = st.selectbox(
        "Matrix holding the vectors" if preview.format == "h5ad" else "Array holding the vectors",
        preview.arrays, key="upload_array",
        help="X: the expression (or feature) matrix; obsm/…: an embedding computed for each cell, "
             "e.g. obsm/X_pca." if preview.format == "h5ad" else None)
if preview.format in ("npy", "npz"):
    meta_file = st.file_uploader("Metadata CSV (optional, one row per vector)", key="upload_meta")
else:
    st.dataframe(preview.head, hide_index=True)
    tabular = preview.format != "h5ad"
    mode = "numeric columns"
    if tabular:
        mode = st.radio("Vectors are", ["numeric columns", "one column of lists"], horizontal=True,
                        key="upload_mode",
                        index=1 if preview.list_columns and not preview.numeric_columns else 0)
    id_choices = [NONE, *preview.columns]
    id_col = st.selectbox("Id column (optional, must be unique)", id_choices, key="upload_id",
                          index=id_choices.index(preview.id_guess) if preview.id_guess else 0,
                          on_change=_drop_id_from_vectors,
                          help="Guessed from the column names; an id column is kept as metadata, "
                               "not used as a vector dimension.")
    options["id_column"] = None if id_col == NONE else id_col
    if tabular and mode == "numeric columns":
        default = [col for col in preview.vector_columns if col != options["id_column"]]
        chosen = st.multiselect("Vector columns", preview.columns, default=default,
                                key="upload_cols")
        # the default choice is the backend's default (numeric, not index-like, not labels)
        options["vector_columns"] = None if chosen == default else chosen
        left_out = {col: preview.not_vectors.get(col, "not chosen")
                    for col in preview.numeric_columns if col not in chosen}
        if options["id_column"] in left_out:
            left_out[options["id_column"]] = "the id column"
        st.caption(describe_roles(chosen, left_out) if chosen else "No vector column chosen.")
    elif tabular:
        if not preview.list_columns:
            st.warning("No column of lists was found; choose numeric columns instead.")
        options["list_column"] = st.selectbox("List column", preview.list_columns or preview.columns,
                                              key="upload_list_col")
    if tabular:
        with st.expander("Coordinates (latitude/longitude for the Globe page)",
                         expanded=bool(preview.latitude or preview.geo_warning)):
            geo_choices = [NONE, *preview.numeric_columns]
            lat_c, lon_c, swap_c = st.columns([2, 2, 1], vertical_alignment="bottom")
            lat = lat_c.selectbox(
                "Latitude column (degrees)", geo_choices, key="upload_lat",
                index=geo_choices.index(preview.latitude) if preview.latitude in geo_choices else 0)
            lon = lon_c.selectbox(
                "Longitude column (degrees)", geo_choices, key="upload_lon",
                index=geo_choices.index(preview.longitude) if preview.longitude in geo_choices else 0)
            swap_c.button("Swap", key="upload_swap", on_click=_swap_coordinates,
                          help="Exchange the latitude and longitude columns.")
            if preview.geo_warning:
                swapped = "look swapped" in preview.geo_warning
                st.warning(preview.geo_warning + (" Press Swap to exchange them." if swapped else ""))
            if (lat == NONE) != (lon == NONE):
                st.warning("Choose both a latitude and a longitude column, or neither.")
            elif lat != NONE and (lat, lon) != (preview.latitude, preview.longitude):
                options["latitude"], options["longitude"] = lat, lon
            elif lat == NONE:
                st.caption("No coordinates: found by name when the file has latitude and "
                           "longitude columns, otherwise the Globe page does not show it.")
    meta_file = st.file_uploader("Extra metadata CSV (optional, one row per vector)",
                                 key="upload_meta")
lost_meta = meta_file is None and _say_if_lost("upload_meta")
options["drop_nonfinite"] = st.checkbox("Drop rows with NaN/inf", key="upload_dropna")
# small files (3–15 rows) pass with the default: it follows the preview's row count
K = params_of("umap")["n_neighbors"]  # the maps' bounds, declared with the projection
options["n_neighbors"] = st.number_input(
    "n_neighbors the dataset must support", K.low, K.high,
    max(K.low, min(K.default, preview.n_rows - 1)),
    key="upload_k", help="The maps' kNN graph needs n_neighbors + 1 rows; a smaller file is "
                         "refused with this number in the message.")
name = st.text_input("Name", up.name.rsplit(".", 1)[0], key="upload_name")
if meta_file is not None:
    options["metadata"] = meta_file.getvalue()
    options["metadata_filename"] = meta_file.name

if st.button("Add dataset", type="primary", key="upload_add", disabled=lost_meta):
    try:
        with st.spinner("Validating and storing…"):
            info, notes = c.add_upload(data, up.name, name=name, **options)
    except LatentLensError as e:
        st.error(str(e))
        st.stop()
    select_dataset(info.id)
    st.success(f"Stored **{info.name}**: {info.n_rows:,} rows × {info.n_dims} dimensions.")
    for note in notes:
        st.info(note)
    st.page_link("views/map.py", label="Open its map", icon=":material/scatter_plot:")
