"""The explanation store: results keyed by image, model, method and settings, in SQLite.

Typical use (a gallery click)::

    store = ExplanationStore()                       # $XAI_PANEL_STORE or the user cache dir
    request = ExplainRequest.create(classifier.model_id, ("lime", "anchors", "shap"))
    explanation = store.get(image_hash(image), request)   # None or the stored methods
    explanation = explain_cached(image, store, classifier) # stored ones at once, rest computed

Batch precompute fills it: ``xai_panel.batch.precompute`` / ``xai-panel precompute``.
"""

from ..engine.request import SCHEMA_VERSION, ExplainRequest, canonical_json, digest, package_version
from ..engine.service import explain_cached, merge_explanations
from .codec import CodecError
from .entries import EncodedExplanation, decode_explanation, encode_explanation
from .export import (
                     ExportError,
                     explanation_zip,
                     export_explanation,
                     export_result,
                     find_results,
                     import_results,
                     stored_explanations,
)
from .sqlite import (
                     MIGRATIONS,
                     SORT_COLUMNS,
                     ExplanationStore,
                     ImageSummary,
                     StoredResult,
                     StoreError,
                     StoreFullError,
                     StoreLockedError,
                     default_store_path,
)

__all__ = [
    "CodecError", "EncodedExplanation", "ExportError", "ExplainRequest", "ExplanationStore", "ImageSummary", "MIGRATIONS",
    "SCHEMA_VERSION", "SORT_COLUMNS", "StoreError", "StoreFullError", "StoreLockedError", "StoredResult",
    "canonical_json", "decode_explanation", "default_store_path", "digest", "encode_explanation",
    "explain_cached", "explanation_zip", "export_explanation", "export_result", "find_results", "import_results",
    "stored_explanations", "merge_explanations", "package_version",
]
