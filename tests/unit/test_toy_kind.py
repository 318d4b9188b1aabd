"""Adding a job kind is one declaration: the validator, the form, the client and the service
all see the toy kind of ``tests/toy_kind.py`` without another line written for it."""

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from backend.errors import InvalidParameterError
from backend.jobs import JobSpec, register, unregister
from tests import toy_kind


@pytest.fixture
def toy():
    register(toy_kind.TOY)
    yield toy_kind.TOY
    unregister(toy_kind.TOY.name)


@pytest.fixture
def ds(backend):
    vec = np.array([[3.0, 4.0], [6.0, 8.0]], dtype=np.float32)
    return backend.store.add_dataset(pd.DataFrame({"a": [1, 2]}), vec, name="t", source="x")


def test_the_validator_reads_the_declaration(toy, backend, ds):
    with pytest.raises(InvalidParameterError, match=r"scale must be a number in \(0, 10\]; got 0"):
        backend.submit(JobSpec("toy_norms", ds.id, {"scale": 0}))
    with pytest.raises(InvalidParameterError, match=r"norm must be one of \['l1', 'l2'\]; got 'l3'"):
        backend.submit(JobSpec("toy_norms", ds.id, {"norm": "l3"}))


def test_the_client_returns_the_typed_result(toy, backend, ds):
    job = backend.submit(JobSpec("toy_norms", ds.id, {"norm": "l1"}))
    assert backend.wait(job, 20).state == "done"
    # l1 norms of 2 * [3, 4] and 2 * [6, 8]: 14 and 28
    assert backend.result(job) == toy_kind.ToyResult(mean_norm=21.0, n_rows=2)
    np.testing.assert_allclose(backend.artifact_array(job, "norms.npy"), [14.0, 28.0])
    assert backend.artifact(job).params == {"scale": 2.0, "norm": "l1"}


def _toy_form():
    import streamlit as st

    from backend.kinds import params_of
    from components.form import param_form

    st.session_state["values"] = param_form(params_of("toy_norms"), key="toy")


def test_the_form_is_generated_from_the_declaration(toy):
    at = AppTest.from_function(_toy_form)
    at.run()
    assert not at.exception
    scale = at.number_input(key="toy-scale")
    assert scale.value == 2.0 and scale.label == "scale" and "Multiplies" in scale.help
    assert at.selectbox(key="toy-norm").options == ["l1", "l2"]
    assert at.session_state["values"] == {"scale": 2.0, "norm": "l2"}
    at.selectbox(key="toy-norm").set_value("l1").run()
    assert at.session_state["values"]["norm"] == "l1"
