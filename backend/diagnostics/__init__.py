"""Diagnostics: representation health, projection faithfulness, weight spectra, graph reconstruction."""

__all__: list[str] = []

from backend.diagnostics.representation import (  # noqa: E402
    RepresentationReport,
    alignment,
    covariance_spikes,
    diffusion_spectral_entropy,
    diffusion_spectral_mutual_information,
    rankme,
    representation_diagnostics,
    uniformity,
    uniformity_sphere,
)
from backend.diagnostics.weights import (  # noqa: E402
    LayerSpectrum,
    MPFit,
    PowerLawFit,
    WeightAnalysis,
    analyze_weights,
    farms_eigenvalues,
    fit_marchenko_pastur,
    fit_power_law,
    layer_eigenvalues,
    mp_bulk_edges,
    spiked_top_eigenvalue,
)

__all__ += [
    "RepresentationReport",
    "alignment",
    "covariance_spikes",
    "diffusion_spectral_entropy",
    "diffusion_spectral_mutual_information",
    "rankme",
    "representation_diagnostics",
    "uniformity",
    "uniformity_sphere",
    "LayerSpectrum",
    "MPFit",
    "PowerLawFit",
    "WeightAnalysis",
    "analyze_weights",
    "farms_eigenvalues",
    "fit_marchenko_pastur",
    "fit_power_law",
    "layer_eigenvalues",
    "mp_bulk_edges",
    "spiked_top_eigenvalue",
]

from backend.diagnostics.graph import (  # noqa: E402
    ProbeResult,
    RayleighResult,
    ReconstructionResult,
    SpectrumResult,
    laplacian_spectrum,
    node_classification_probe,
    rayleigh_quotient,
    reconstruction_map,
)

__all__ += [
    "ProbeResult",
    "RayleighResult",
    "ReconstructionResult",
    "SpectrumResult",
    "laplacian_spectrum",
    "node_classification_probe",
    "rayleigh_quotient",
    "reconstruction_map",
]

from backend.diagnostics.projection import (  # noqa: E402
    ProjectionFaithfulness,
    continuity,
    knn_recall,
    projection_faithfulness,
    row_spearman,
    trustworthiness,
)

__all__ += [
    "ProjectionFaithfulness",
    "continuity",
    "knn_recall",
    "projection_faithfulness",
    "row_spearman",
    "trustworthiness",
]
