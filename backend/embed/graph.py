"""Node embeddings of a graph: FastRP, Laplacian eigenmaps, and a force layout.

Both estimators take a :class:`backend.datasets.graph.Graph` or a square scipy
sparse adjacency matrix (``A[i, j]`` = weight of the edge i → j; a matrix is
treated as directed unless it is symmetric). Weights must be non-negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from backend.datasets.graph import as_adjacency
from backend.device import resolve_device
from backend.errors import InvalidInputError, InvalidParameterError
from backend.graph_ops import LAPLACIANS
from backend.graph_ops import laplacian as graph_laplacian
from backend.graph_ops import symmetric_adjacency

__all__ = ["FastRP", "LaplacianEigenmaps", "force_layout"]

Progress = Callable[[float, str], None] | None

FASTRP_DIRECTIONS = ("both", "out", "in")
COMPONENT_MODES = ("separate", "smallest")
EIGEN_SOLVERS = ("auto", "dense", "shift_invert", "lanczos")
_DENSE_MAX_NODES = 1000
_LANCZOS_AUTO_RESTARTS = 20
_RP_CHUNK_ROWS = 65536


class FastRP:
    """FastRP node embedding: a very sparse random projection of walk matrices.

    Parameters
    ----------
    n_components : int, default=128
        Embedding dimension d, >= 1.
    iteration_weights : sequence of float, default=(0.0, 1.0, 1.0)
        Weight α_i of the i-th power of the transition matrix, i = 1..k; one
        sparse product per entry. At least one must be non-zero. (Neo4j GDS's
        default; the paper's tuned BlogCatalog setting is ``(0, 0, 1, 6.67)``.)
    beta : float, default=0.0
        Degree normalisation strength β: node j's random vector is scaled by
        deg(j)^β before propagation. β < 0 down-weights hubs; the paper tunes
        β in [-1, 0] (BlogCatalog: -0.64).
    sparsity : float or "sqrt_n", default=3.0
        s of the very sparse random projection (Li, Hastie & Church 2006):
        entries are ±√(s/d) with probability 1/(2s) each, else 0. ``"sqrt_n"``
        uses s = √n as the paper and its reference code. The default s = 3
        (Achlioptas 2003; Neo4j GDS) is chosen deliberately: with s = √n a row
        of R is all zero with probability (1 - 1/√n)^d, 28% of BlogCatalog's
        rows at d = 128, so low powers carry no signal for many nodes; with
        s = 3 that probability is (2/3)^d ≈ 0 and the cost is the same, since
        the first product is dense either way.
    self_influence : float, default=0.0
        Weight of a "0-th power": each node's own L2-normalised random row.
        Gives isolated nodes distinct vectors (see Notes).
    normalize_powers : bool, default=True
        L2-normalise each row of every power before the weighted sum (the
        setting used for all of the paper's tuned results).
    standardize : bool, default=True
        Centre each output column and scale it to unit variance, as the
        reference code (``sklearn.preprocessing.scale``); see Notes for
        isolated nodes.
    direction : {"both", "out", "in"}, default="both"
        How a directed graph is walked: ``"both"`` ignores direction (S + Sᵀ, so
        a reciprocated pair weighs twice), ``"out"`` follows edges forward (a
        node aggregates its successors), ``"in"`` backward (its predecessors).
        Ignored for undirected graphs.
    random_state : int, default=0
        Seed of the random projection; the projection is drawn on the CPU in a
        fixed order, so the result does not depend on the device or threads.
    device : str or None, default=None
        Torch device for the products; ``None`` picks CUDA when available. On
        the CPU the sparse products run in scipy (faster there than torch's).

    Attributes
    ----------
    embedding_ : ndarray of shape (n_nodes, n_components), float32
    isolated_ : ndarray of shape (n_isolated,), int64
        Nodes with no neighbour in the walk direction (self-loops count as a
        neighbour).
    sparsity_ : float
        The s used.
    n_zero_projection_rows_ : int
        Rows of R that came out all zero (expected n (1 - 1/s)^d).
    directed_ : bool
        Whether the input graph was directed.
    direction_ : str
        ``"undirected"`` for an undirected graph, else ``direction``.
    device_ : str
    device_reason_ : str

    Notes
    -----
    With S the oriented adjacency, D = diag(row sums), A = D⁻¹S (a random
    walk step), L = diag(c_j^β) with c_j the column sums of S (how much weight
    reaches j; the degree when undirected) and R ∈ ℝ^{n×d} the random
    projection:

    .. math::
        N_1 = A L R, \\quad N_i = A N_{i-1}, \\quad
        E = \\sum_{i=1}^{k} \\alpha_i \\, \\mathrm{rownorm}(N_i)
            + \\gamma \\, \\mathrm{rownorm}(R),

    then E is standardised column-wise. The n×n matrix Aᵏ is never formed:
    the cost is k sparse×dense products, O(k · nnz · d). Self-loops are used
    as given (a walk may stay put).

    **Isolated nodes** (no neighbour in the walk direction) have all-zero
    powers. With ``self_influence=0`` their embedding is exactly the zero
    vector: the column mean and standard deviation of the standardisation are
    taken over the other nodes and isolated rows are scaled but not centred,
    so they sit at the centre of the cloud, all at the same point (they are
    structurally indistinguishable). With ``self_influence > 0`` each gets its
    own random direction.

    References
    ----------
    Chen, Sultan, Tian, Chen & Skiena, "Fast and Accurate Network Embeddings via
    Very Sparse Random Projection", CIKM 2019, arXiv:1908.11512, Alg. 1.
    Reference code: GTmac/FastRP ``fastrp.py``; Neo4j GDS ``FastRP.java``.
    Li, Hastie & Church, "Very sparse random projections", KDD 2006.

    Examples
    --------
    >>> from backend.datasets.graph import load_example_graph
    >>> g, _ = load_example_graph("karate_club")
    >>> FastRP(16, random_state=0).fit_transform(g).shape
    (34, 16)
    """

    def __init__(
        self,
        n_components: int = 128,
        *,
        iteration_weights: Sequence[float] = (0.0, 1.0, 1.0),
        beta: float = 0.0,
        sparsity: float | str = 3.0,
        self_influence: float = 0.0,
        normalize_powers: bool = True,
        standardize: bool = True,
        direction: str = "both",
        random_state: int = 0,
        device: str | None = None,
    ):
        self.n_components = n_components
        self.iteration_weights = iteration_weights
        self.beta = beta
        self.sparsity = sparsity
        self.self_influence = self_influence
        self.normalize_powers = normalize_powers
        self.standardize = standardize
        self.direction = direction
        self.random_state = random_state
        self.device = device

    def _check_params(self) -> tuple[float, ...]:
        d = self.n_components
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
            raise InvalidParameterError(f"n_components must be an integer >= 1; got {d!r}.")
        try:
            weights = tuple(float(w) for w in self.iteration_weights)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                "iteration_weights must be a sequence of numbers; got "
                f"{self.iteration_weights!r}."
            ) from None
        if not weights or not all(np.isfinite(weights)) or not any(weights):
            raise InvalidParameterError(
                "iteration_weights must be a non-empty sequence of finite numbers with at least "
                f"one non-zero entry; got {self.iteration_weights!r}."
            )
        for name in ("beta", "self_influence"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.number)) or not np.isfinite(v):
                raise InvalidParameterError(f"{name} must be a finite number; got {v!r}.")
        s = self.sparsity
        if s != "sqrt_n" and (
            not isinstance(s, (int, float, np.number)) or isinstance(s, bool)
            or not np.isfinite(s) or s < 1
        ):
            raise InvalidParameterError(f"sparsity must be a number >= 1 or 'sqrt_n'; got {s!r}.")
        if self.direction not in FASTRP_DIRECTIONS:
            raise InvalidParameterError(
                f"direction must be one of {FASTRP_DIRECTIONS}; got {self.direction!r}."
            )
        if not isinstance(self.random_state, (int, np.integer)):
            raise InvalidParameterError(
                f"random_state must be an integer; got {self.random_state!r}."
            )
        return weights

    def fit(self, graph, y=None, *, progress: Progress = None) -> FastRP:
        """Compute the embedding of every node.

        Parameters
        ----------
        graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        y : ignored
        progress : callable(fraction, message) or None
            Called between the sparse products.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            For parameters out of range.
        InvalidInputError
            For a non-square matrix, negative or non-finite weights, or an empty graph.
        """
        import torch

        weights = self._check_params()
        S, directed = as_adjacency(graph, what="FastRP")
        n = S.shape[0]
        if directed and self.direction == "both":
            S = (S + S.T).tocsr()
        elif directed and self.direction == "in":
            S = S.T.tocsr()
        s = float(np.sqrt(n)) if self.sparsity == "sqrt_n" else float(self.sparsity)
        res = resolve_device(self.device)
        dev = torch.device(res.device)

        row_sum = np.asarray(S.sum(axis=1)).ravel()
        col_sum = np.asarray(S.sum(axis=0)).ravel()
        isolated = np.flatnonzero(row_sum == 0)
        inv = np.zeros(n)
        inv[row_sum > 0] = 1.0 / row_sum[row_sum > 0]
        A = S.astype(np.float32)
        A.data *= np.repeat(inv, np.diff(A.indptr)).astype(np.float32)
        scale = np.zeros(n)
        reached = col_sum > 0
        scale[reached] = col_sum[reached] ** float(self.beta)

        R, n_zero = _very_sparse_projection(n, int(self.n_components), s, int(self.random_state))
        matmul = _sparse_matmul(A, dev)
        N = torch.from_numpy(R).to(dev)
        del R
        E = torch.zeros_like(N)
        if self.self_influence:
            _add_rows(E, N, float(self.self_influence), normalize=True)
        N.mul_(torch.from_numpy(scale.astype(np.float32)).to(dev)[:, None])
        k = len(weights)
        for i, w in enumerate(weights):
            if progress is not None:
                progress(i / (k + 1), f"FastRP: power {i + 1} of {k}")
            N = matmul(N)
            if w:
                _add_rows(E, N, w, normalize=bool(self.normalize_powers))
        del N
        if self.standardize:
            E = _standardize(E, isolated, dev)
        if progress is not None:
            progress(1.0, "FastRP: done")

        self.embedding_ = E.float().cpu().numpy()
        self.isolated_ = isolated.astype(np.int64)
        self.sparsity_ = s
        self.n_zero_projection_rows_ = int(n_zero)
        self.directed_ = bool(directed)
        self.direction_ = self.direction if directed else "undirected"
        self.device_ = res.device
        self.device_reason_ = res.reason
        return self

    def fit_transform(self, graph, y=None, *, progress: Progress = None) -> np.ndarray:
        """Fit and return ``embedding_``, float32 (n_nodes, n_components)."""
        return self.fit(graph, progress=progress).embedding_


class LaplacianEigenmaps:
    """Laplacian eigenmaps: the smallest non-trivial eigenvectors of the graph Laplacian.

    Parameters
    ----------
    n_components : int, default=2
        Embedding dimension d: ``1 <= d <= size of the largest connected component - 1``
        (``components="separate"``) or ``<= n_nodes - n_components_of_graph``
        (``"smallest"``).
    laplacian : {"normalized", "combinatorial"}, default="normalized"
        ``"normalized"`` solves L y = λ D y (Belkin & Niyogi), through the
        symmetric normalised Laplacian I - D^{-1/2} S D^{-1/2} with y =
        D^{-1/2} u; eigenvalues lie in [0, 2]. ``"combinatorial"`` uses
        L = D - S and y = u.
    eigen_solver : {"auto", "dense", "shift_invert", "lanczos"}, default="auto"
        Per connected component: ``"dense"`` is LAPACK on the full matrix;
        ``"shift_invert"`` is ARPACK on (L - σI)⁻¹ with σ slightly below 0 (one
        sparse LU factorisation with a symmetric minimum-degree ordering; fast
        on mesh-like graphs, but the factor fills in on hub-heavy social
        graphs: 20 s for BlogCatalog); ``"lanczos"`` is ARPACK on λ_max I - L
        without factorisation (1 s for BlogCatalog, but very slow when the
        smallest eigenvalues crowd together, as on meshes). ``"auto"`` is dense
        up to 1000 nodes; above, Lanczos with 20 restarts, then shift-invert if
        that has not converged.
    tol : float, default=0.0
        ARPACK tolerance (0 = machine precision).
    random_state : int, default=0
        Seed of ARPACK's start vector.
    components : {"separate", "smallest"}, default="separate"
        How a graph with several connected components is embedded. ``"separate"``: each
        component gets its own embedding in the same d columns (column j holds the j-th
        non-trivial eigenvector of the node's own component; a component of s nodes fills
        ``min(d, s - 1)`` columns), so every node outside the largest component still has
        a non-zero vector (only isolated nodes stay 0). ``"smallest"``: the d smallest
        non-trivial eigenpairs over all components, each supported on one component:
        Belkin & Niyogi on the whole graph, but on a graph with many components most
        columns fall on the largest one and the other nodes get all-zero vectors (36% of
        a citation graph's nodes at d = 16). The Laplacian spectrum uses ``"smallest"``.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_nodes, n_components), float64
    eigenvalues_ : ndarray of shape (n_components,), float64
        Ascending: the largest component's (``"separate"``) or the smallest over all
        components (``"smallest"``).
    eigenvector_component_ : ndarray of shape (n_components,), int64
        The connected component each column's eigenvector lives on (``"smallest"``; it is
        zero elsewhere); with ``"separate"``, the largest component (every component
        fills the column with its own eigenvector).
    n_zero_rows_ : int
        Nodes whose embedding is all zero (isolated nodes, and with ``"smallest"`` every
        node of a component no column was chosen from).
    n_outside_largest_ : int
        Nodes outside the largest connected component.
    n_connected_components_ : int
        Isolated nodes count as components.
    component_labels_ : ndarray of shape (n_nodes,), int64
    trivial_eigenvalues_ : ndarray of shape (n_connected_components_,), float64
        The dropped eigenvalue of each component (0 up to rounding).
    isolated_ : ndarray of shape (n_isolated,), int64
        Nodes with no edge to another node; their rows of ``embedding_`` are 0.
    symmetrized_ : bool
        True when a directed graph was made undirected as S + Sᵀ.
    eigen_solver_ : str
        The solver that handled the largest component (``"dense"``,
        ``"lanczos"`` or ``"shift_invert"``; ``"none"`` when every node is isolated).

    Notes
    -----
    A graph with c connected components has c zero eigenvalues, whose
    eigenvectors are the component indicators (times D^{1/2} when normalised).
    A solver run on the whole graph returns an arbitrary basis of that
    c-dimensional space and may miss some of it (palash1992/GEM #79), so the
    eigenproblem is solved on each component separately: its trivial
    eigenvector is dropped and the non-trivial eigenpairs of all components
    are merged in ascending order (ties by component, then index). Each kept
    eigenvector is therefore supported on one component
    (``eigenvector_component_``).

    Self-loops do not enter the Laplacian. Signs are fixed deterministically:
    the entry of largest magnitude (the lowest-index one among entries within
    1e-6 of the maximum) is made positive. Within a repeated eigenvalue (e.g. a
    cycle) the basis is still arbitrary.

    References
    ----------
    Belkin & Niyogi, "Laplacian Eigenmaps for Dimensionality Reduction and Data
    Representation", Neural Computation 15 (2003), eq. 1-3. von Luxburg, "A
    tutorial on spectral clustering", Stat. Comput. 17 (2007), Prop. 2 and 4.

    Examples
    --------
    >>> import networkx as nx, scipy.sparse as sp
    >>> S = sp.csr_matrix(nx.to_scipy_sparse_array(nx.path_graph(5)))
    >>> np.round(LaplacianEigenmaps(2).fit(S).eigenvalues_, 4)
    array([0.2929, 1.    ])
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        laplacian: str = "normalized",
        eigen_solver: str = "auto",
        tol: float = 0.0,
        random_state: int = 0,
        components: str = "separate",
    ):
        self.n_components = n_components
        self.components = components
        self.laplacian = laplacian
        self.eigen_solver = eigen_solver
        self.tol = tol
        self.random_state = random_state

    def fit(self, graph, y=None, *, progress: Progress = None) -> LaplacianEigenmaps:
        """Compute the embedding.

        Parameters
        ----------
        graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        y : ignored
        progress : callable(fraction, message) or None
            Called between components that need a sparse solve.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            For an unknown Laplacian or solver, or ``n_components`` larger than the
            number of non-trivial eigenvectors the graph has.
        InvalidInputError
            For a non-square matrix, negative or non-finite weights, or an empty graph.
        """
        from scipy.sparse.csgraph import connected_components

        k = self.n_components
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise InvalidParameterError(f"n_components must be an integer >= 1; got {k!r}.")
        if self.laplacian not in LAPLACIANS:
            raise InvalidParameterError(
                f"laplacian must be one of {LAPLACIANS}; got {self.laplacian!r}."
            )
        if self.eigen_solver not in EIGEN_SOLVERS:
            raise InvalidParameterError(
                f"eigen_solver must be one of {EIGEN_SOLVERS}; got {self.eigen_solver!r}."
            )
        if not isinstance(self.tol, (int, float)) or self.tol < 0:
            raise InvalidParameterError(f"tol must be a number >= 0; got {self.tol!r}.")
        if self.components not in COMPONENT_MODES:
            raise InvalidParameterError(
                f"components must be one of {COMPONENT_MODES}; got {self.components!r}."
            )
        separate = self.components == "separate"
        S, directed = as_adjacency(graph, what="Laplacian eigenmaps")
        S = symmetric_adjacency(S, directed)
        n = S.shape[0]
        n_comp, labels = connected_components(S, directed=False)
        sizes = np.bincount(labels, minlength=n_comp)
        limit = int(sizes.max()) - 1 if separate else n - n_comp
        if k > limit:
            where = (f"the largest connected component ({limit + 1} nodes)" if separate
                     else f"a graph with {n} nodes in {n_comp} connected components")
            raise InvalidParameterError(
                f"n_components={k} is more than the {limit} non-trivial eigenvectors of "
                f"{where}; use at most {limit}."
            )
        deg = np.asarray(S.sum(axis=1)).ravel()
        isolated = np.flatnonzero(deg == 0)
        rng = np.random.default_rng(self.random_state)

        candidates: list[tuple[float, int, int, np.ndarray, np.ndarray]] = []
        trivial = np.zeros(n_comp)
        members_of = np.split(np.argsort(labels, kind="stable"),
                              np.cumsum(np.bincount(labels, minlength=n_comp))[:-1])
        big = [c for c in range(n_comp) if len(members_of[c]) > _DENSE_MAX_NODES]
        done_big = 0
        largest, solver_used = 0, "none"
        for c in range(n_comp):
            idx = members_of[c]
            if len(idx) == 1:
                continue
            m = min(k + 1, len(idx))
            if progress is not None and len(idx) > _DENSE_MAX_NODES:
                progress(done_big / max(len(big), 1), f"eigenmaps: component of {len(idx)} nodes")
                done_big += 1
            vals, vecs, used = _component_eigs(
                S[idx][:, idx], deg[idx], m, self.laplacian, self.eigen_solver, self.tol, rng
            )
            if len(idx) > largest:
                largest, solver_used = len(idx), used
            trivial[c] = vals[0]
            for j in range(1, len(vals)):
                candidates.append((float(vals[j]), c, j, idx, vecs[:, j]))
        big_c = int(np.argmax(sizes))
        if separate:  # column j: the j-th non-trivial eigenvector of each node's component
            chosen = sorted((t for t in candidates if t[1] == big_c), key=lambda t: t[2])
            emb = np.zeros((n, k))
            for val, c, j, idx, vec in candidates:
                emb[idx, j - 1] = _fix_signs(vec[:, None])[:, 0]
        else:
            candidates.sort(key=lambda t: (t[0], t[1], t[2]))
            chosen = candidates[:k]
            emb = np.zeros((n, k))
            for col, (_, _, _, idx, vec) in enumerate(chosen):
                emb[idx, col] = vec
            emb = _fix_signs(emb)
        if progress is not None:
            progress(1.0, "eigenmaps: done")

        self.embedding_ = emb
        self.eigenvalues_ = np.array([t[0] for t in chosen])
        self.eigenvector_component_ = np.array([t[1] for t in chosen], dtype=np.int64)
        self.n_connected_components_ = int(n_comp)
        self.component_labels_ = labels.astype(np.int64)
        self.trivial_eigenvalues_ = trivial
        self.isolated_ = isolated.astype(np.int64)
        self.symmetrized_ = bool(directed)
        self.eigen_solver_ = solver_used
        self.n_zero_rows_ = int((~emb.any(axis=1)).sum())
        self.n_outside_largest_ = int(n - sizes.max())
        return self

    def fit_transform(self, graph, y=None, *, progress: Progress = None) -> np.ndarray:
        """Fit and return ``embedding_``, float64 (n_nodes, n_components)."""
        return self.fit(graph, progress=progress).embedding_


def force_layout(
    graph,
    *,
    iterations: int = 50,
    random_state: int = 0,
    max_nodes: int = 3000,
) -> np.ndarray:
    """2-D force-directed layout (Fruchterman–Reingold, networkx ``spring_layout``).

    Parameters
    ----------
    graph : Graph or scipy.sparse matrix of shape (n_nodes, n_nodes)
        Directed graphs are laid out as undirected; weights pull harder.
    iterations : int, default=50
    random_state : int, default=0
    max_nodes : int, default=3000
        The layout costs O(n²) per iteration; larger graphs are refused (place
        them by a 2-D projection of a node embedding instead).

    Returns
    -------
    ndarray of shape (n_nodes, 2), float32
        Coordinates in [-1, 1].

    Raises
    ------
    InvalidInputError
        If the graph has more than ``max_nodes`` nodes, or negative weights.

    References
    ----------
    Fruchterman & Reingold, "Graph drawing by force-directed placement",
    Software: Practice and Experience 21 (1991).
    """
    import networkx as nx

    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise InvalidParameterError(f"iterations must be an integer >= 1; got {iterations!r}.")
    S, directed = as_adjacency(graph, what="the force layout")
    n = S.shape[0]
    if n > max_nodes:
        raise InvalidInputError(
            f"the force layout is O(n²) per iteration and the graph has {n} nodes (limit "
            f"{max_nodes}); place the nodes by a 2-D projection of a node embedding instead, "
            "or raise max_nodes."
        )
    if directed:
        S = (S + S.T).tocsr()
    G = nx.from_scipy_sparse_array(S)
    pos = nx.spring_layout(G, iterations=int(iterations), seed=int(random_state), weight="weight")
    return np.array([pos[i] for i in range(n)], dtype=np.float32).reshape(n, 2)


# ---------------------------------------------------------------------------- private


def _very_sparse_projection(n: int, d: int, s: float, seed: int) -> tuple[np.ndarray, int]:
    """R ∈ {+√(s/d), 0, -√(s/d)}^{n×d}, P(±) = 1/(2s) each; float32, and its all-zero rows.

    Drawn in fixed 65,536-row chunks from one generator, so it is reproducible.
    """
    rng = np.random.default_rng(seed)
    R = np.empty((n, d), dtype=np.float32)
    value = np.float32(np.sqrt(s / d))
    p_half = np.float32(0.5 / s)
    n_zero = 0
    for start in range(0, n, _RP_CHUNK_ROWS):
        stop = min(start + _RP_CHUNK_ROWS, n)
        u = rng.random((stop - start, d), dtype=np.float32)
        block = R[start:stop]
        np.copyto(block, np.where(u < p_half, value, -value))  # + below 1/(2s), - up to 1/s
        block *= u < 2 * p_half  # zero above 1/s
        n_zero += int((~block.any(axis=1)).sum())
    return R, n_zero


def _sparse_matmul(A: sp.csr_matrix, dev):
    """x ↦ A @ x for dense torch tensors on ``dev``; scipy on the CPU, torch CSR elsewhere."""
    import torch

    if dev.type == "cpu":
        return lambda x: torch.from_numpy(np.asarray(A @ x.numpy()))
    At = torch.sparse_csr_tensor(
        torch.from_numpy(A.indptr.astype(np.int64)),
        torch.from_numpy(A.indices.astype(np.int64)),
        torch.from_numpy(A.data),
        size=A.shape,
    ).to(dev)
    return lambda x: At @ x


def _add_rows(E, N, weight: float, *, normalize: bool) -> None:
    """E += weight · N, with each row of N first scaled to unit L2 norm when ``normalize``
    (all-zero rows stay zero); in place, no temporary of N's size."""
    import torch

    if not normalize:
        E.add_(N, alpha=weight)
        return
    norm = torch.linalg.vector_norm(N, dim=1, keepdim=True)
    factor = torch.where(norm > 0, weight / norm, torch.zeros_like(norm))
    E.addcmul_(N, factor)


def _standardize(E, isolated: np.ndarray, dev):
    """Standardise columns with the non-isolated rows' statistics; isolated rows only scaled."""
    import torch

    if len(isolated) == E.shape[0]:
        return E
    if len(isolated):
        mask = torch.ones(E.shape[0], dtype=torch.bool, device=dev)
        mask[torch.from_numpy(isolated).to(dev)] = False
        std, mean = torch.std_mean(E[mask], dim=0, unbiased=False)
    else:
        mask = None
        std, mean = torch.std_mean(E, dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    if mask is None:
        return E.sub_(mean).div_(std)
    E.div_(std)
    E[mask] -= mean / std
    return E


def _component_eigs(
    S: sp.csr_matrix, deg: np.ndarray, m: int, laplacian: str, solver: str, tol: float, rng
) -> tuple[np.ndarray, np.ndarray, str]:
    """The m smallest eigenpairs of one connected component (ascending) as embedding vectors,
    and the solver that produced them."""
    from scipy.linalg import eigh
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh, splu

    size = S.shape[0]
    L = sp.csc_matrix(graph_laplacian(S, laplacian))
    upper = 2.0 if laplacian == "normalized" else 2.0 * float(deg.max())
    if laplacian == "normalized":
        dinv = 1.0 / np.sqrt(deg)  # a component of >= 2 nodes has no isolated node
    if solver == "dense" or (solver == "auto" and size <= _DENSE_MAX_NODES) or m >= size - 1:
        vals, vecs = eigh(L.toarray(), subset_by_index=[0, m - 1])
        used = "dense"
    else:
        v0 = rng.uniform(-1.0, 1.0, size)
        vals = None
        if solver in ("auto", "lanczos"):
            M = upper * sp.identity(size, format="csr") - L
            budget = {"maxiter": _LANCZOS_AUTO_RESTARTS} if solver == "auto" else {}
            try:
                mu, vecs = eigsh(M, k=m, which="LA", v0=v0, tol=tol,
                                 ncv=min(size, max(2 * m + 1, 40)), **budget)
                vals, used = upper - mu, "lanczos"
            except ArpackNoConvergence:
                if solver == "lanczos":
                    raise InvalidInputError(
                        f"Lanczos did not converge on a component of {size} nodes (its smallest "
                        "eigenvalues are too close together); use eigen_solver='shift_invert'."
                    ) from None
        if vals is None:
            # sigma < 0 keeps L - sigma*I positive definite; a symmetric fill-reducing ordering
            # keeps the LU factor small on mesh-like graphs.
            sigma = -1e-3 * upper
            lu = splu(L - sigma * sp.identity(size, format="csc"), permc_spec="MMD_AT_PLUS_A",
                      options={"SymmetricMode": True})
            op = LinearOperator((size, size), matvec=lu.solve, dtype=np.float64)
            vals, vecs = eigsh(L, k=m, sigma=sigma, which="LM", OPinv=op, v0=v0, tol=tol)
            used = "shift_invert"
        order = np.argsort(vals, kind="stable")
        vals, vecs = vals[order], vecs[:, order]
    if laplacian == "normalized":
        vecs = vecs * dinv[:, None]
    return vals, vecs, used


def _fix_signs(V: np.ndarray) -> np.ndarray:
    """Make each column's largest-magnitude entry (lowest index among near-ties) positive."""
    out = V.copy()
    for j in range(V.shape[1]):
        a = np.abs(V[:, j])
        top = a.max()
        if top == 0:
            continue
        i = int(np.flatnonzero(a >= top * (1 - 1e-6))[0])
        if V[i, j] < 0:
            out[:, j] = -V[:, j]
    return out
