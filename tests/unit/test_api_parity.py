"""The backend API, generated from its one declaration (:mod:`backend.api`): both backends
have exactly the declared methods with the declared signatures, and every method, called on
both against one small workspace, gives the same answer (or the same error)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from backend.api import Added, Backend, declarations
from backend.client import LocalBackend
from backend.errors import InvalidInputError, NotFoundError
from backend.http_client import HttpBackend
from backend.jobs import JobSpec, job_kinds
from backend.tasks.text import TextSearchResult
from tests.service_support import TOKEN, served

DECLS = declarations()
EDGES = b"source,target,weight\na,b,1\nb,c,2\nc,a,1\nc,d,0.5\n"
NODES = b"id,club\na,x\nb,x\nc,y\nd,y\ne,y\n"
TEXTS = pd.DataFrame({"message": ["a cat sleeps on the sofa", "the dog barks at the postman",
                                  "fresh bread from the bakery", "a bowl of hot soup",
                                  "the stock market fell today", "interest rates are rising"],
                      "topic": ["animals", "animals", "food", "food", "money", "money"]})


def _csv(n: int = 30, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    df["key"] = [f"k{i}" for i in range(n)]
    return df.to_csv(index=False).encode()


def _weights() -> bytes:
    from safetensors.numpy import save

    return save({"w": np.arange(12, dtype=np.float32).reshape(3, 4)})


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """LocalBackend, and HttpBackend to a service on the same LocalBackend (one workspace)."""
    with served(tmp_path_factory.mktemp("parity") / "home") as both:
        yield both


@pytest.fixture(scope="module")
def ws(both):
    """Digits, a tiny graph, the bundled model, a tiny text table (embedded), finished jobs."""
    local, _, _ = both
    digits = local.add_bundled("digits").id
    up = local.add_upload(_csv(), "pts.csv", id_column="key").dataset.id
    text = local.add_text_upload(TEXTS.to_csv(index=False).encode(), "t.csv",
                                 text_column="message").dataset.id
    jobs = {"pca": JobSpec("pca", digits, {"n_components": 2}),
            "cluster": JobSpec("cluster", digits, {"method": "kmeans", "n_clusters": 4,
                                                   "space": "vectors"}),
            "knn": JobSpec("knn", up, {"n_neighbors": 3}),
            "embed": JobSpec("text_embed", text, {})}
    ids = {k: local.submit(s) for k, s in jobs.items()}
    for j in ids.values():
        assert local.wait(j, timeout=300).state == "done", local.status(j)
    derived = local.result(ids["embed"]).derived_dataset
    return {"digits": digits, "up": up, "text": text, "embedded": derived, **ids}


def _delete_one(b, seed):
    info = b.add_upload(_csv(seed=100 + seed), f"gone{seed}.csv").dataset
    return b.delete_dataset(info.id), info.id in {d.id for d in b.datasets()}


def _close_fresh(b, svc, tmp):
    fresh = HttpBackend(svc.url, TOKEN) if isinstance(b, HttpBackend) else LocalBackend(tmp)
    return fresh.close()


# name -> call(backend, workspace, extra): every declared method, at least once
CALLS = {
    "datasets": lambda b, s, x: b.datasets(),
    "dataset": lambda b, s, x: b.dataset(s["up"]),
    "delete_dataset": lambda b, s, x: _delete_one(b, x["seed"]),
    "bundled": lambda b, s, x: b.bundled(),
    "add_bundled": lambda b, s, x: b.add_bundled("digits"),
    "add_upload": lambda b, s, x: b.add_upload(_csv(), "pts.csv", id_column="key"),
    "bundled_text": lambda b, s, x: b.bundled_text(),
    "add_bundled_text": lambda b, s, x: b.add_bundled_text(),
    "add_text_upload": lambda b, s, x: b.add_text_upload(
        TEXTS.to_csv(index=False).encode(), "t.csv", text_column="message"),
    "add_bundled_model": lambda b, s, x: b.add_bundled_model(),
    "add_model": lambda b, s, x: b.add_model(_weights(), "w.safetensors", name="w"),
    "add_satclip": lambda b, s, x: b.add_satclip(x["satclip"], "s.ckpt"),
    "add_graph": lambda b, s, x: b.add_graph(EDGES, "g.csv", nodes=NODES, directed=True),
    "add_bundled_graph": lambda b, s, x: b.add_bundled_graph("karate_club"),
    "graph_edges": lambda b, s, x: b.graph_edges(
        b.add_graph(EDGES, "g.csv", nodes=NODES, directed=True).dataset.id),
    "table": lambda b, s, x: b.table(s["digits"], ["digit"]),
    "rows": lambda b, s, x: b.rows(s["digits"], [5, 0, 5]),
    "neighbors": lambda b, s, x: b.neighbors(s["digits"], 3, 7, "cosine"),
    "search": lambda b, s, x: b.search(s["embedded"], "pets", 3,
                                       [{"kind": "category", "column": "topic",
                                         "values": ["animals", "food"]}]),
    "submit": lambda b, s, x: b.submit(JobSpec("pca", s["digits"], {"n_components": 2})),
    "status": lambda b, s, x: b.status(s["pca"]),
    "cancel": lambda b, s, x: b.cancel(s["pca"]),
    "jobs": lambda b, s, x: b.jobs(s["digits"]),
    "wait": lambda b, s, x: b.wait(s["knn"], 30),
    "artifact": lambda b, s, x: b.artifact(s["knn"]),
    "artifacts": lambda b, s, x: b.artifacts(s["digits"]),
    "artifact_table": lambda b, s, x: b.artifact_table(s["pca"], "projection.parquet"),
    "artifact_json": lambda b, s, x: b.artifact_json(s["knn"], "meta.json"),
    "artifact_array": lambda b, s, x: b.artifact_array(s["knn"], "indices.npy"),
    "result": lambda b, s, x: b.result(s["pca"]),
    "close": lambda b, s, x: _close_fresh(b, x["svc"], x["tmp"]),
    "facets": lambda b, s, x: b.facets(s["digits"], ["digit"], [{"kind": "category",
                                       "column": "digit", "values": ["3"]}], [1, 3, 5], top=5,
                                       return_rows=True),
    "selection_bytes": lambda b, s, x: b.selection_bytes(s["digits"], rows=[3, 1], fmt="parquet"),
    "cluster_names": lambda b, s, x: b.cluster_names(s["cluster"], 1),
    "rename_clusters": lambda b, s, x: b.rename_clusters(s["cluster"], 0, {1: "ones"}),
    "cluster_labels": lambda b, s, x: b.cluster_labels(s["cluster"], 1),
    "assignments_bytes": lambda b, s, x: b.assignments_bytes(s["cluster"], 0, "csv"),
    "density": lambda b, s, x: b.density(s["pca"], 32),
    "map_html": lambda b, s, x: b.map_html(s["pca"], s["cluster"]),
    "open_view": lambda b, s, x: b.open_view({"dataset": s["digits"], "proj": s["pca"],
                                              "clu": "0123456789abcdef", "level": "x"}),
    "view_query": lambda b, s, x: b.view_query(dataset=s["digits"], level=2),
}
# the same error, class and message, on both
FAULTS = {
    "unknown_dataset": lambda b, s: b.dataset("0123456789abcdef"),
    "bad_id": lambda b, s: b.table("../../etc"),
    "not_a_graph": lambda b, s: b.graph_edges(s["digits"]),
    "wrong_file_type": lambda b, s: b.artifact_table(s["knn"], "indices.npy"),
    "unlisted_file": lambda b, s: b.artifact_json(s["knn"], "../../catalog.sqlite3"),
    "empty_model": lambda b, s: b.add_model(b"", "m.pt"),
    "bad_satclip": lambda b, s: b.add_satclip(b"not a checkpoint", "s.ckpt"),
    "bad_graph": lambda b, s: b.add_graph(b"source,target\n", "g.csv"),
    "bad_text_column": lambda b, s: b.add_text_upload(b"a,b\n1,x\n", "n.csv", text_column="zz"),
    "bad_search": lambda b, s: b.search(s["embedded"], "", 3),
    "bad_param": lambda b, s: b.submit(JobSpec("pca", s["digits"], {"n_components": 999})),
    "unknown_bundled_graph": lambda b, s: b.add_bundled_graph("nope"),
    "zero_row_cosine": lambda b, s: b.neighbors(
        b.add_upload(b"a,b\n0,0\n1,2\n3,1\n2,2\n", "z.csv", n_neighbors=2).dataset.id, 0,
        2, "cosine"),
    "bad_facet_column": lambda b, s: b.facets(s["digits"], ["nope"]),
    "bad_cluster_level": lambda b, s: b.cluster_names(s["cluster"], 99),
}


def _same(a, b) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    elif isinstance(a, TextSearchResult):
        pd.testing.assert_frame_equal(a.hits, b.hits)
        timing = {"seconds", "embed_seconds", "index_seconds"}
        assert ({k: v for k, v in a.to_dict().items() if k not in timing}
                == {k: v for k, v in b.to_dict().items() if k not in timing})
    elif hasattr(a, "to_dict") and not isinstance(a, tuple):  # FacetCounts, DensityGrid
        assert type(a) is type(b) and a.to_dict() == b.to_dict()
    elif isinstance(a, tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert type(a) is type(b) and a == b


@pytest.mark.parametrize("name", list(DECLS))
def test_both_backends_have_the_declared_signature(name):
    declared = getattr(Backend, name)
    for cls in (LocalBackend, HttpBackend):
        method = getattr(cls, name)
        assert inspect.signature(method) == inspect.signature(declared), cls
        assert (inspect.signature(method, eval_str=True)
                == inspect.signature(declared, eval_str=True)), cls
        assert method.__doc__ == declared.__doc__  # documented once, in backend/api.py
    if DECLS[name].route is not None:  # implemented, not the protocol's empty body
        assert name in vars(LocalBackend) and name in vars(HttpBackend)


def test_no_public_method_outside_the_protocol():
    for cls in (LocalBackend, HttpBackend):
        public = {n for n, v in inspect.getmembers(cls, callable) if not n.startswith("_")}
        assert public == set(DECLS), cls


def test_every_declared_method_is_called_below():
    assert set(CALLS) == set(DECLS)


@pytest.mark.parametrize("name", list(CALLS))
def test_every_method_answers_alike_on_both(both, ws, name, tmp_path):
    from tests.geo_support import satclip_checkpoint_bytes

    local, remote, svc = both
    answers = []
    for seed, b in enumerate((local, remote)):
        extra = {"seed": seed, "svc": svc, "tmp": tmp_path / "fresh",
                 "satclip": satclip_checkpoint_bytes() if name == "add_satclip" else None}
        answers.append(CALLS[name](b, ws, extra))
    _same(*answers)
    value = answers[0]
    # what each answer must be, beyond being the same on both
    if name in ("add_upload", "add_text_upload", "add_graph", "add_bundled_graph"):
        assert isinstance(value, Added) and value.dataset.id in {d.id for d in local.datasets()}
    if name == "delete_dataset":
        assert value == (None, False)
    if name == "submit":
        assert value == ws["pca"]
    if name == "rows":
        assert np.array_equal(value[0], value[2]) and value.dtype == np.float32
    if name == "result":  # the kind's declared class, as stored in the sidecar
        assert isinstance(value, job_kinds()["pca"].result)
        assert value.to_dict() == local.artifact(ws["pca"]).meta["result"]
    if name == "search":
        assert set(value.hits["_row"]) <= {0, 1, 2, 3} and len(value.hits) == 3
    if name == "facets":
        assert value.n_selected == len(value.rows) and value.facets["digit"].n_counted == 3
    if name == "open_view":
        assert value.view.projection == ws["pca"] and len(value.messages) == 2


@pytest.mark.parametrize("name", list(FAULTS))
def test_the_same_error_on_both(both, ws, name):
    local, remote, _ = both
    errors = []
    for b in (local, remote):
        with pytest.raises(Exception) as e:
            FAULTS[name](b, ws)
        errors.append((type(e.value), str(e.value)))
    assert errors[0] == errors[1]
    if name in ("unknown_dataset", "bad_id", "wrong_file_type", "unlisted_file"):
        assert errors[0][0] is NotFoundError
    if name == "zero_row_cosine":
        assert errors[0][0] is InvalidInputError and "row 0 is the zero vector" in errors[0][1]


def test_the_service_serves_exactly_the_declared_routes(both):
    import httpx

    _, _, svc = both
    schema = httpx.get(svc.url + "/openapi.json",
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()
    served = {(m.upper(), path, op["operationId"])
              for path, ops in schema["paths"].items() for m, op in ops.items()}
    declared = {(d.route.method, d.route.path, d.name) for d in DECLS.values() if d.route}
    assert served - declared == {("GET", "/health", "health_health_get"),
                                 ("GET", "/info", "info_info_get")}
    assert declared <= served
    # each route documents its method's docstring; a method with files takes multipart
    for d in DECLS.values():
        if d.route is None:
            continue
        op = schema["paths"][d.route.path][d.route.method.lower()]
        assert op["description"] == inspect.cleandoc(d.fn.__doc__)
        if d.files:
            assert list(op["requestBody"]["content"]) == ["multipart/form-data"]


def test_a_new_job_kind_is_in_the_service_schema_and_runs_over_http(both, ws):
    import httpx

    from backend.jobs import register, unregister
    from tests import toy_kind

    local, remote, svc = both
    register(toy_kind.TOY)
    try:
        schema = httpx.get(svc.url + "/openapi.json",
                           headers={"Authorization": f"Bearer {TOKEN}"}).json()
        specs = {s["title"]: s for s in schema["components"]["schemas"]["JobSpec"]["oneOf"]}
        assert set(specs) == set(job_kinds())
        params = specs["toy_norms"]["properties"]["params"]["properties"]
        assert params["norm"]["enum"] == ["l1", "l2"] and params["scale"]["default"] == 2.0
        job = remote.submit(JobSpec("toy_norms", ws["up"], {"norm": "l1"}))
        assert remote.wait(job, 30).state == "done"
        assert remote.result(job) == local.result(job)
        assert isinstance(remote.result(job), toy_kind.ToyResult)
    finally:
        unregister(toy_kind.TOY.name)
    assert "toy_norms" not in {s["title"] for s in httpx.get(
        svc.url + "/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()["components"]["schemas"]["JobSpec"]["oneOf"]}
