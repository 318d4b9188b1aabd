"""The backend service in-process: HttpBackend gives LocalBackend's answers, security, limits."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pandas as pd
import pytest

from backend.client import LocalBackend, get_backend
from backend.errors import InvalidInputError, InvalidParameterError, NotFoundError
from backend.http_client import BackendServiceError, HttpBackend, service_settings
from backend.jobs import JobSpec
from backend.service import MAX_JSON_BODY, TOKEN_FILE, load_or_create_token
from tests.service_support import TOKEN
from tests.service_support import served as served_backends

AUTH = {"Authorization": f"Bearer {TOKEN}"}
META = b"extra\n" + b"\n".join(b"%d" % i for i in range(40))  # a metadata CSV for 40 rows


def _csv(n=40, d=4, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"f{i}" for i in range(d)])
    df["key"] = [f"k{i}" for i in range(n)]
    df["group"] = rng.choice(["a", "b"], n)
    return df.to_csv(index=False).encode()


def _weights() -> bytes:
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    return save({"layer.weight": rng.normal(size=(8, 6)).astype(np.float32),
                 "layer.bias": np.zeros(8, np.float32)})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A LocalBackend, the service on it (uvicorn in a thread), and an HttpBackend to it."""
    with served_backends(tmp_path_factory.mktemp("svc") / "home", max_upload=200_000,
                         max_rows=500) as both:
        yield both


@pytest.fixture(scope="module")
def stored(served):
    """A digits dataset, an uploaded one, and finished PCA and kNN jobs, made over HTTP."""
    local, remote, _ = served
    digits = remote.add_bundled("digits")
    up, _ = remote.add_upload(_csv(), "pts.csv", name="pts", id_column="key", metadata=META,
                              metadata_filename="more.csv")
    pca = remote.submit(JobSpec("pca", digits.id, {"n_components": 3}))
    knn = remote.submit(JobSpec("knn", up.id, {"n_neighbors": 5}))
    for j in (pca, knn):
        assert remote.wait(j, timeout=120).state == "done", remote.status(j)
    return {"digits": digits.id, "up": up.id, "pca": pca, "knn": knn}


def _outcome(fn, backend):
    try:
        return "ok", fn(backend)
    except Exception as e:  # compared below: the same class and message on both sides
        return type(e), str(e)


def _same(a, b) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    elif isinstance(a, (list, tuple)) and a and isinstance(a[0], (pd.DataFrame, np.ndarray)):
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


CALLS = {
    "datasets": lambda b, s: b.datasets(),
    "dataset": lambda b, s: b.dataset(s["up"]),
    "table": lambda b, s: b.table(s["digits"]),
    "table_cols": lambda b, s: b.table(s["up"], ["group", "extra"]),
    "rows": lambda b, s: b.rows(s["digits"], [5, 0, 1796, 5]),
    "rows_empty": lambda b, s: b.rows(s["digits"], []),
    "neighbors": lambda b, s: b.neighbors(s["digits"], 3, 7, "cosine"),
    "status": lambda b, s: b.status(s["pca"]),
    "jobs": lambda b, s: b.jobs(s["digits"]),
    "artifact": lambda b, s: b.artifact(s["pca"]),
    "artifacts": lambda b, s: b.artifacts(),
    "artifact_table": lambda b, s: b.artifact_table(s["pca"], "projection.parquet"),
    "artifact_json": lambda b, s: b.artifact_json(s["pca"], "meta.json"),
    "artifact_array": lambda b, s: [b.artifact_array(s["knn"], "indices.npy"),
                                    b.artifact_array(s["knn"], "distances.npy")],
    "resubmit": lambda b, s: b.submit(JobSpec("pca", s["digits"], {"n_components": 3})),
    "readd": lambda b, s: b.add_bundled("digits"),
    "reupload": lambda b, s: b.add_upload(_csv(), "pts.csv", name="pts", id_column="key",
                                          metadata=META, metadata_filename="more.csv"),
    "model": lambda b, s: b.add_model(_weights(), "tiny.safetensors", name="tiny"),
    # expected failures: same exception class and message
    "bad_model": lambda b, s: b.add_model(b"not weights at all", "m.safetensors"),
    "empty_model": lambda b, s: b.add_model(b"", "m.pt"),
    "bad_id": lambda b, s: b.dataset("../../etc"),
    "unknown_id": lambda b, s: b.dataset("0123456789abcdef"),
    "bad_column": lambda b, s: b.table(s["up"], ["nope"]),
    "bad_row": lambda b, s: b.rows(s["digits"], [1797]),
    "bad_metric": lambda b, s: b.neighbors(s["digits"], 0, 5, "hamming"),
    "bad_nb_row": lambda b, s: b.neighbors(s["digits"], 5000, 5),
    "unknown_kind": lambda b, s: b.submit(JobSpec("nope", s["digits"], {})),
    "bad_param": lambda b, s: b.submit(JobSpec("pca", s["digits"], {"n_components": 9})),
    "unknown_param": lambda b, s: b.submit(JobSpec("umap", s["digits"], {"n_neighbours": 9})),
    "bad_device": lambda b, s: b.submit(JobSpec("pca", s["digits"], {"device": "tpu"})),
    "unknown_job": lambda b, s: b.status("fedcba9876543210"),
    "unknown_bundled": lambda b, s: b.add_bundled("mnist"),
    "bad_upload": lambda b, s: b.add_upload(b"name,city\na,b\nc,d\n", "names.csv"),
    "pickle_upload": lambda b, s: b.add_upload(b"\x80\x04\x95" + b"\0" * 20, "x.npy"),
    "few_rows": lambda b, s: b.add_upload(b"a,b\n1,2\n3,4\n", "tiny.csv"),
    "missing_file": lambda b, s: b.artifact_table(s["pca"], "nope.parquet"),
    "file_traversal": lambda b, s: b.artifact_json(s["pca"], "../../catalog.sqlite3"),
    "unknown_artifact": lambda b, s: b.artifact("0000000000000000"),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_http_backend_answers_like_local(served, stored, call):
    local, remote, _ = served
    got_local = _outcome(lambda b: CALLS[call](b, stored), local)
    got_remote = _outcome(lambda b: CALLS[call](b, stored), remote)
    assert got_local[0] == got_remote[0], (got_local, got_remote)
    if got_local[0] == "ok":
        _same(got_local[1], got_remote[1])
    else:
        assert got_local[1] == got_remote[1]


def test_wire_values(served, stored):
    _, remote, _ = served
    info = remote.dataset(stored["up"])
    assert (info.n_rows, info.n_dims, info.columns) == (40, 4, ["key", "group", "extra"])
    rows = remote.rows(stored["digits"], [1, 0])
    from sklearn.datasets import load_digits

    assert rows.dtype == np.float32 and np.array_equal(rows, load_digits().data[[1, 0]])
    st = remote.status(stored["pca"])
    assert st.finished and st.artifact_id == stored["pca"] and st.params == {"n_components": 3}
    proj = remote.artifact_table(stored["pca"], "projection.parquet")
    assert list(proj.columns) == ["_row", "x", "y", "z"] and len(proj) == 1797


def test_upload_limits_give_clear_4xx(served):
    local, remote, svc = served
    import httpx

    limit = ("over the 0.19 MB upload limit; upload a smaller file or raise "
             "LATENT_LENS_MAX_UPLOAD_MB")
    big = _csv(n=3000)  # about 260 kB, over the 200 kB limit of this service
    with pytest.raises(InvalidInputError, match=f"'big.csv' is 0.25 MB, {limit}"):
        remote.add_upload(big, "big.csv")
    # the service refuses it on its own: the file's own limit (400), and the request body's
    # limit (file + metadata + 1 MB of form overhead: 413), also when the size is not announced
    options = {"options": '{"filename": "big.csv"}'}
    r = httpx.post(svc.url + "/datasets/upload", headers=AUTH, files={"data": ("big.csv", big)},
                   data=options)
    assert r.status_code == 400 and limit in r.json()["detail"]
    big = big * 6
    r = httpx.post(svc.url + "/datasets/upload", headers=AUTH, files={"data": ("big.csv", big)},
                   data=options)
    assert r.status_code == 413

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"data\"; filename=\"big.csv\"\r\n\r\n"
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]
        yield b"\r\n--b--\r\n"

    r = httpx.post(svc.url + "/datasets/upload", content=chunks(),
                   headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    assert r.json()["detail"] == ("the upload (all its files together) " + limit
                                  + " (on the backend service, if you use one).")
    # the client's own check skipped (as if the limit had changed since it connected): the
    # service's 413, with the same message
    stale = HttpBackend(svc.url, TOKEN)
    stale.info["max_upload_bytes"] = 10**9
    with pytest.raises(InvalidInputError, match=f"the upload .all its files together. {limit}"):
        stale.add_upload(big, "big.csv")
    with pytest.raises(InvalidParameterError, match="request to /jobs is too large"):
        stale.submit(JobSpec("pca", "0" * 16, {"pad": "x" * MAX_JSON_BODY}))
    stale.close()
    n_before = len(local.datasets())
    with pytest.raises(InvalidInputError, match="600 rows, over the limit of 500; upload fewer"):
        remote.add_upload(_csv(n=600, d=2), "many.csv")
    assert len(local.datasets()) == n_before
    # limits are the service's settings, not the caller's
    r = httpx.post(svc.url + "/datasets/upload", headers=AUTH, files={"data": ("a.csv", _csv())},
                   data={"options": '{"filename": "a.csv", "max_rows": 1000000000}'})
    assert r.status_code == 400 and "max_rows: Extra inputs are not permitted" in r.json()["detail"]
    r = httpx.post(svc.url + "/jobs", headers={**AUTH, "Content-Type": "application/json"},
                   content=b"[" + b"0," * 3_000_000 + b"0]")
    assert r.status_code == 413


def test_every_route_but_health_needs_the_token(served, stored):
    _, _, svc = served
    import httpx

    schema = httpx.get(svc.url + "/openapi.json", headers=AUTH).json()
    routes = [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]
    assert len(routes) >= 16
    routes.append(("GET", "/openapi.json"))
    http = httpx.Client(base_url=svc.url)
    for method, path in routes:
        url = path.format(dataset_id=stored["digits"], job_id=stored["pca"],
                          artifact_id=stored["pca"])
        for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"},
                        {"Authorization": TOKEN}):
            r = http.request(method, url, headers=headers)
            if path == "/health":
                assert r.status_code == 200
            else:
                assert r.status_code == 401, (method, path, headers, r.status_code)
                assert r.headers["www-authenticate"] == "Bearer"
    http.close()
    with pytest.raises(BackendServiceError, match="bearer token is wrong"):
        HttpBackend(svc.url, "wrong-token-000000000")


def test_artifact_files_only_by_listed_served_name(served, stored):
    local, _, svc = served
    import httpx

    aid = stored["pca"]
    base = f"{svc.url}/artifacts/{aid}/json"
    assert httpx.get(base, params={"name": "meta.json"}, headers=AUTH).json()["job_id"] == aid
    for name in ("../../catalog.sqlite3", "/etc/passwd", "meta.json\0", "..", "",
                 "projection.parquet.tmp"):
        r = httpx.get(base, params={"name": name}, headers=AUTH)
        assert r.status_code == 404 and "has no file" in r.json()["detail"], name
    # a raw request line with dot segments (http.client sends the path as written): no route
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
    conn.request("GET", f"/artifacts/{aid}/../../catalog.sqlite3", headers=AUTH)
    r = conn.getresponse()
    assert r.status == 404 and b"SQLite" not in r.read()
    conn.close()
    # a listed file is read only as its own type; a file of another kind (e.g. a pickle) never
    tmp = local.store.new_artifact_dir()
    (tmp / "model.pkl").write_bytes(b"\x80\x04N.")
    art = local.store.commit_artifact("00000000000000aa", stored["digits"], "fake", tmp, {})
    assert "model.pkl" in art.files
    for route, suffix in (("json", ".json"), ("table", ".parquet"), ("array", ".npy")):
        r = httpx.get(f"{svc.url}/artifacts/{art.id}/{route}", params={"name": "model.pkl"},
                      headers=AUTH)
        assert r.status_code == 404
        assert f"'model.pkl' is not a {suffix} file" in r.json()["detail"]
    r = httpx.get(f"{svc.url}/artifacts/{aid}/table", params={"name": "meta.json"}, headers=AUTH)
    assert r.status_code == 404 and "'meta.json' is not a .parquet file" in r.json()["detail"]
    for bad in ("0" * 15, "g" * 16, "..", "ABCDEF0123456789"):
        r = httpx.get(f"{svc.url}/artifacts/{bad}", headers=AUTH)
        assert r.status_code == 404


def test_token_generated_once_0600(tmp_path):
    token, created = load_or_create_token(tmp_path)
    assert created and len(token) >= 40
    path = tmp_path / TOKEN_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_token(tmp_path) == (token, False)
    assert load_or_create_token(tmp_path, "configured-token-123") == ("configured-token-123", False)
    with pytest.raises(InvalidParameterError, match="has 5 characters; use at least 16"):
        load_or_create_token(tmp_path, "short")


def test_main_binds_loopback_and_prints_token_once(tmp_path, monkeypatch, capsys):
    import uvicorn

    from backend import service

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    monkeypatch.delenv("LATENT_LENS_BACKEND_TOKEN", raising=False)
    service.main(["--home", str(tmp_path / "h"), "--port", "8765", "--workers", "1"])
    first = capsys.readouterr().out
    token = (tmp_path / "h" / TOKEN_FILE).read_text().strip()
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8765
    assert "Latent Lens backend on http://127.0.0.1:8765" in first
    assert first.count(token) == 1
    service.main(["--home", str(tmp_path / "h"), "--host", "0.0.0.0", "--workers", "1"])
    second = capsys.readouterr().out
    assert token not in second and "the one in" in second
    assert "Warning: listening on 0.0.0.0" in second
    assert calls[1]["host"] == "0.0.0.0" and calls[1]["port"] == 8600


def test_settings_from_env_or_secrets_toml(tmp_path, monkeypatch, served):
    _, _, svc = served
    monkeypatch.delenv("LATENT_LENS_BACKEND_URL", raising=False)
    monkeypatch.delenv("LATENT_LENS_BACKEND_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.chdir(tmp_path)
    assert service_settings() == (None, None)
    assert isinstance(get_backend(tmp_path / "ws"), LocalBackend)
    (tmp_path / ".streamlit").mkdir()
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.write_text(f'LATENT_LENS_BACKEND_URL = "{svc.url}"\n'
                       f'LATENT_LENS_BACKEND_TOKEN = "{TOKEN}"\n')
    assert service_settings() == (svc.url, TOKEN)
    b = get_backend()
    assert isinstance(b, HttpBackend) and b.info["max_rows"] == 500
    monkeypatch.setenv("LATENT_LENS_BACKEND_TOKEN", "from-env-0000000000")
    assert service_settings() == (svc.url, "from-env-0000000000")
    with pytest.raises(BackendServiceError,
                       match=r"refused the request \(the bearer token is wrong\); set LATENT_LENS"):
        get_backend()
    secrets.write_text("LATENT_LENS_BACKEND_URL = \n")
    with pytest.raises(InvalidInputError, match="is not valid TOML"):
        service_settings()


def test_unreachable_service_is_a_clear_error():
    from tests.service_support import free_port

    with pytest.raises(BackendServiceError,
                       match="cannot reach the backend service .* `make serve`"):
        HttpBackend(f"http://127.0.0.1:{free_port()}", TOKEN)


def test_job_api_cancel_over_http(served, stored):
    _, remote, _ = served
    st = remote.cancel(stored["pca"])  # a finished job stays finished
    assert st.state == "done"
    with pytest.raises(NotFoundError, match="no job with id"):
        remote.cancel("abcdefabcdefabcd")
    meta = remote.artifact_json(stored["knn"], "meta.json")
    idx = remote.artifact_array(stored["knn"], "indices.npy")
    assert meta["params"] == {"n_neighbors": 5, "metric": "euclidean"}
    assert idx.shape == (40, 6) and idx.dtype.kind == "i"
    assert (idx[:, 0] == np.arange(40)).all()  # each point is its own nearest neighbour
    buf = io.BytesIO()
    remote.table(stored["up"]).to_parquet(buf)
    assert buf.tell() > 0


def test_another_api_version_is_refused(served, monkeypatch):
    import backend.http_client

    _, _, svc = served
    monkeypatch.setattr(backend.http_client, "API_VERSION", 99)
    with pytest.raises(BackendServiceError, match="speaks API version 2, this app version 99"):
        HttpBackend(svc.url, TOKEN)
