"""Upload: bring your own vectors (CSV, TSV, Parquet, NPY, NPZ) and project them."""

import streamlit as st

from app.common import client, current_dataset, select_dataset
from backend.kinds import FORMATS, inspect_upload, max_upload_bytes
from backend.errors import LatentLensError

c = client()
current_dataset()
st.title("Upload a dataset")
st.markdown(
    "A table whose numeric columns (or one column of lists) are the vectors, or a NumPy array "
    "with an optional metadata CSV of the same length; or a table with a column of texts to "
    "embed. Everything is checked before anything "
    f"is stored. Limit: {max_upload_bytes() / 2**20:,.0f} MB."
)

up = st.file_uploader("Vectors file", type=list(FORMATS), key="upload_file")
if up is None:
    st.stop()
data = up.getvalue()
try:
    preview = inspect_upload(data, up.name)
except LatentLensError as e:
    st.error(str(e))
    st.stop()

st.markdown(f"**{up.name}** · {preview.format.upper()} · {preview.n_rows:,} rows")
if preview.format not in ("npy", "npz"):
    text_choices = [col for col in preview.columns
                    if col not in preview.numeric_columns and col not in preview.list_columns]
    text_col = st.selectbox(
        "Text column to embed (optional)", ["(none)", *text_choices], key="upload_text",
        help="A table of texts instead of vectors: the chosen column is embedded on the Text page "
             "(all-MiniLM-L6-v2); the other columns are kept for search filters. No numeric "
             "column is needed.")
    if text_col != "(none)":
        st.dataframe(preview.head, hide_index=True)
        id_col = st.selectbox("Id column (optional, must be unique)", ["(none)", *preview.columns],
                              key="upload_id")
        name = st.text_input("Name", up.name.rsplit(".", 1)[0], key="upload_name")
        if st.button("Add text dataset", type="primary", key="upload_add"):
            try:
                with st.spinner("Validating and storing…"):
                    info, notes = c.add_text_upload(
                        data, up.name, text_column=text_col, name=name,
                        id_column=None if id_col == "(none)" else id_col)
            except LatentLensError as e:
                st.error(str(e))
                st.stop()
            select_dataset(info.id)
            st.success(f"Stored **{info.name}**: {info.n_rows:,} rows with texts in {text_col!r} "
                       f"(id {info.id}).")
            for note in notes:
                st.warning(note)
            st.page_link("views/text.py", label="Embed it on the Text page",
                         icon=":material/text_fields:")
        st.stop()
options = {}
meta_file = None
if preview.format == "npz" and len(preview.arrays) > 1:
    options["array_key"] = st.selectbox("Array holding the vectors", preview.arrays, key="upload_array")
if preview.format in ("npy", "npz"):
    meta_file = st.file_uploader("Metadata CSV (optional, one row per vector)", type=["csv", "tsv"],
                                 key="upload_meta")
else:
    st.dataframe(preview.head, hide_index=True)
    mode = st.radio("Vectors are", ["numeric columns", "one column of lists"], horizontal=True,
                    key="upload_mode", index=1 if preview.list_columns and not preview.numeric_columns else 0)
    id_choices = ["(none)", *preview.columns]
    id_col = st.selectbox("Id column (optional, must be unique)", id_choices, key="upload_id",
                          index=id_choices.index(preview.id_guess) if preview.id_guess else 0,
                          help="Guessed from the column names; an id column is kept as metadata, "
                               "not used as a vector dimension.")
    options["id_column"] = None if id_col == "(none)" else id_col
    if mode == "numeric columns":
        default = [col for col in preview.numeric_columns if col != options["id_column"]]
        chosen = st.multiselect("Vector columns", preview.columns, default=default, key="upload_cols")
        # the default choice is the backend's default (every numeric column but the id)
        options["vector_columns"] = None if chosen == default else chosen
    else:
        if not preview.list_columns:
            st.warning("No column of lists was found; choose numeric columns instead.")
        options["list_column"] = st.selectbox("List column", preview.list_columns or preview.columns,
                                              key="upload_list_col")
    meta_file = st.file_uploader("Extra metadata CSV (optional, one row per vector)",
                                 type=["csv", "tsv"], key="upload_meta")
options["drop_nonfinite"] = st.checkbox("Drop rows with NaN/inf", key="upload_dropna")
options["n_neighbors"] = st.number_input("n_neighbors the dataset must support", 2, 200, 15,
                                         key="upload_k")
name = st.text_input("Name", up.name.rsplit(".", 1)[0], key="upload_name")
if meta_file is not None:
    options["metadata"] = meta_file.getvalue()
    options["metadata_filename"] = meta_file.name

if st.button("Add dataset", type="primary", key="upload_add"):
    try:
        with st.spinner("Validating and storing…"):
            info, notes = c.add_upload(data, up.name, name=name, **options)
    except LatentLensError as e:
        st.error(str(e))
        st.stop()
    select_dataset(info.id)
    st.success(f"Stored **{info.name}**: {info.n_rows:,} rows × {info.n_dims} dimensions "
               f"(id {info.id}).")
    for note in notes:
        st.info(note)
    st.page_link("views/map.py", label="Open its map", icon=":material/scatter_plot:")
