"""Typed records of a catalog: items, attributes, the facet vocabulary and interactions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

__all__ = [
    "Attribute",
    "Catalog",
    "FacetSpec",
    "Interaction",
    "Item",
    "Vocabulary",
    "attribute_id",
]

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def attribute_id(facet: str, value: str) -> str:
    """The id of the attribute ``(facet, value)``.

    >>> attribute_id("genre", "jazz")
    'genre:jazz'
    """
    return f"{facet}:{value}"


class Attribute(BaseModel):
    """A (facet, value) pair such as ``genre: jazz``, with the other words people use for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    facet: NonEmpty
    value: NonEmpty
    synonyms: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return attribute_id(self.facet, self.value)


class Item(BaseModel):
    """One recommendable thing: an album, a film, a restaurant."""

    model_config = ConfigDict(extra="forbid")

    id: NonEmpty
    name: NonEmpty
    attributes: dict[NonEmpty, list[NonEmpty]]
    description: str = ""

    @field_validator("attributes")
    @classmethod
    def _has_attributes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not any(value.values()):
            raise ValueError("the item has no attributes")
        # Keep order, drop repeats: a value listed twice is still one attribute.
        return {facet: list(dict.fromkeys(vals)) for facet, vals in value.items() if vals}


class FacetSpec(BaseModel):
    """How to talk about one facet: the question template and synonyms of its values."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = None
    label: str | None = None
    synonyms: dict[str, list[str]] = Field(default_factory=dict)


class Vocabulary(BaseModel):
    """The facets a catalog may use. When present, any other facet is an error."""

    model_config = ConfigDict(extra="forbid")

    facets: dict[NonEmpty, FacetSpec]


class Interaction(BaseModel):
    """A user consumed, liked or bought an item, optionally at a time (seconds since epoch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: NonEmpty
    item: NonEmpty
    timestamp: float | None = None


class Catalog(BaseModel):
    """Items plus the vocabulary that describes their attributes."""

    model_config = ConfigDict(extra="forbid")

    items: list[Item]
    vocabulary: Vocabulary | None = None
    source: str = "<memory>"
    #: Attribute order to use in the graph; by default the order of first appearance.
    attribute_order: list[str] | None = None

    def attributes(self) -> list[Attribute]:
        """Every attribute used by some item, with synonyms from the vocabulary."""
        found: dict[str, Attribute] = {}
        for item in self.items:
            for facet, values in item.attributes.items():
                for value in values:
                    aid = attribute_id(facet, value)
                    if aid not in found:
                        found[aid] = Attribute(facet=facet, value=value, synonyms=self.synonyms(facet, value))
        if self.attribute_order is None:
            return list(found.values())
        return [found[a] for a in self.attribute_order if a in found]

    def synonyms(self, facet: str, value: str) -> tuple[str, ...]:
        """The other words the vocabulary gives for ``(facet, value)``."""
        if self.vocabulary is None or facet not in self.vocabulary.facets:
            return ()
        return tuple(self.vocabulary.facets[facet].synonyms.get(value, ()))
