import FHIR
import Foundation

/// Builds the CapabilityStatement from what the server really supports: the resource types
/// from the R4 definitions and, for each, the search parameters the index covers (composites
/// included; special parameters such as `near` are not indexed).
enum CapabilityStatementBuilder {
    /// The operations of one resource type: `$validate` everywhere, `$everything` and
    /// `$export` on Patient, `$export` on Group.
    static func operations(for type: String) -> [JSONValue] {
        var operations: [JSONValue] = [
            ["name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"]
        ]
        if type == "Patient" {
            operations.append([
                "name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            ])
            operations.append([
                "name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
            ])
        }
        if type == "Group" {
            operations.append([
                "name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
            ])
        }
        operations += TerminologyRoutes.capabilityOperations(for: type)
        return operations
    }

    static func build(registry: SearchParameterRegistry, configuration: FHIRServerConfiguration) -> JSONValue {
        let typeInteractions: [JSONValue] = [
            "read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type",
        ]
        .map { .object(JSONObject([("code", .string($0))])) }
        let common = registry.common.values.filter { $0.type != .special }
            .sorted { $0.code < $1.code }
        let resources: [JSONValue] = fhirResourceTypeNames.map { type in
            let parameters = (registry.parameters(of: type) + common)
                .filter { $0.type != .special }
            return .object(
                JSONObject([
                    ("type", .string(type)),
                    ("profile", .string("http://hl7.org/fhir/StructureDefinition/\(type)")),
                    ("interaction", .array(typeInteractions)),
                    ("versioning", "versioned"),
                    ("readHistory", true),
                    ("updateCreate", true),
                    ("conditionalCreate", true),
                    ("conditionalUpdate", true),
                    ("conditionalDelete", "single"),
                    ("operation", .array(operations(for: type))),
                    (
                        "searchParam",
                        .array(
                            parameters.map { parameter in
                                .object(
                                    JSONObject([
                                        ("name", .string(parameter.code)),
                                        ("definition", .string(parameter.definitionURL)),
                                        ("type", .string(parameter.type.rawValue)),
                                    ]))
                            })
                    ),
                ]))
        }.map(Self.addingSupportedProfiles)
        let date = FHIRDateRange.instantString(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        return .object(
            JSONObject([
                ("resourceType", "CapabilityStatement"),
                ("status", "active"),
                ("date", .string(String(date.prefix(10)))),
                ("publisher", "Caduceus"),
                ("kind", "instance"),
                ("software", ["name": "Caduceus", "version": "0.1.0"]),
                (
                    "implementation",
                    .object(
                        JSONObject([
                            ("description", "Caduceus FHIR R4 server"),
                            ("url", .string(configuration.basePath.isEmpty ? "/" : configuration.basePath)),
                        ]))
                ),
                ("fhirVersion", "4.0.1"),
                ("format", ["application/fhir+json", "application/json"]),
                (
                    "rest",
                    .array([
                        .object(
                            JSONObject([
                                ("mode", "server"),
                                ("documentation", .string(totalDocumentation)),
                                ("resource", .array(resources)),
                                (
                                    "interaction",
                                    [
                                        ["code": "transaction"], ["code": "batch"], ["code": "history-system"],
                                        ["code": "search-system"],
                                    ]
                                ),
                                (
                                    "operation",
                                    [
                                        [
                                            "name": "export",
                                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                                        ]
                                    ]
                                ),
                                // Compartment search (`Patient/[id]/Observation`) for every R4 CompartmentDefinition.
                                (
                                    "compartment",
                                    .array(
                                        Compartment.all.keys.sorted().map {
                                            .string("http://hl7.org/fhir/CompartmentDefinition/\($0.lowercased())")
                                        })
                                ),
                                (
                                    "searchParam",
                                    .array(
                                        common.map { parameter in
                                            .object(
                                                JSONObject([
                                                    ("name", .string(parameter.code)),
                                                    ("definition", .string(parameter.definitionURL)),
                                                    ("type", .string(parameter.type.rawValue)),
                                                ]))
                                        } + [
                                            [
                                                "name": "_id", "type": "token",
                                                "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                                            ],
                                            [
                                                "name": "_lastUpdated", "type": "date",
                                                "definition":
                                                    "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
                                            ],
                                            [
                                                "name": "_filter", "type": "special",
                                                "documentation": .string(filterDocumentation),
                                            ],
                                        ])
                                ),
                            ]))
                    ])
                ),
            ]))
    }

    /// What `_total` does, as README.md says it.
    static let totalDocumentation =
        "Search `_total`: `accurate` counts every match; `none` gives no total; `estimate`, the default,"
        + " gives the exact total when the answer ends on the page returned or has at most \(SearchQuery.defaultEstimateBound) matches"
        + " (counted up to that bound), and past the bound the PostgreSQL planner's estimate of the row count (SQLite: no total)."
        + " `_summary=count` and `_count=0` always count. Without an exact total the Bundle has no `last` link and `next`"
        + " follows each full page."

    /// What `_filter` answers, as README.md says it.
    static let filterDocumentation =
        "_filter (search_filter.html) on every resource type, over the indexed search parameters:"
        + " and, or, not and parentheses (not before and before or); eq ne co sw ew gt lt ge le on strings, eq ne ss sb on tokens"
        + " (and in/ni with the value sets of R4 core's required bindings),"
        + " eq ne re on references, eq ne gt lt ge le sa eb ap (and po on dates) on dates, numbers and quantities, eq ne co sw ew on"
        + " uris, pr on all; chains (subject.name co \"pet\"). Not supported (400): other value sets, [filter] paths, composite parameters."

    /// `rest.security` for a server that takes SMART bearer tokens.
    static func advertisingSMART(_ statement: JSONValue) -> JSONValue {
        guard case .object(var object) = statement, case .array(var rest)? = object["rest"],
            case .object(var server)? = rest.first
        else {
            return statement
        }
        server.set(
            "security",
            .object(
                JSONObject([
                    ("cors", false),
                    (
                        "service",
                        [
                            [
                                "coding": [
                                    [
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "SMART-on-FHIR",
                                    ]
                                ], "text": "OAuth2 bearer tokens with SMART App Launch v2 scopes (HS256 or RS256 JWT)",
                            ]
                        ]
                    ),
                    (
                        "description",
                        "Requests need Authorization: Bearer <JWT>; scopes patient/, user/ and system/ (v1 and v2 forms)."
                    ),
                ])), after: ["mode"])
        rest[0] = .object(server)
        object["rest"] = .array(rest)
        return .object(object)
    }
}
