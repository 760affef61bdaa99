"""fhirflow: synthetic FHIR R4 patients into analytics tables."""

__version__ = "0.1.0"
