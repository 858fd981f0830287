// FHIR is JSON through and through: everyone who imports FHIR gets the JSON module too.
@_exported import JSON
