"""Catalogs of items and attributes, and the item–attribute graph built from them."""

from crs.kb.errors import CatalogError, KBError, UnknownIdError
from crs.kb.graph import CSR, KnowledgeGraph, build_graph
from crs.kb.loaders import BUNDLED_CATALOG, iter_interaction_pairs, load_catalog, load_interactions, load_vocabulary
from crs.kb.models import Attribute, Catalog, FacetSpec, Interaction, Item, Vocabulary, attribute_id
from crs.kb.scpr import DATASETS, ScprDataset, load_scpr

__all__ = [
    "BUNDLED_CATALOG",
    "CSR",
    "DATASETS",
    "Attribute",
    "Catalog",
    "CatalogError",
    "FacetSpec",
    "Interaction",
    "Item",
    "KBError",
    "KnowledgeGraph",
    "ScprDataset",
    "UnknownIdError",
    "Vocabulary",
    "attribute_id",
    "build_graph",
    "iter_interaction_pairs",
    "load_catalog",
    "load_interactions",
    "load_scpr",
    "load_vocabulary",
]
