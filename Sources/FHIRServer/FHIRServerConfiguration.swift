import Foundation
import FHIR
import FHIRStore

/// How the FHIR API is exposed.
public struct FHIRServerConfiguration: Sendable {
    /// The path the API lives under, such as `/fhir-server/api/v4` (IBM FHIR Server's).
    public var basePath: String
    /// The scheme and authority for absolute URLs (`Location`, `fullUrl`, links), such as
    /// `https://fhir.example.org`. When `nil`, the request's `Host` header is used, so that
    /// clients that refuse links to another host (fhirpy) can follow them.
    public var publicURL: String?
    /// The page size when a search has no `_count`.
    public var defaultPageSize: Int
    /// The largest `_count` honoured.
    public var maximumPageSize: Int
    /// Largest request body accepted, in bytes.
    public var maximumBodySize: Int
    /// What every write is checked against.
    public var validator: ResourceValidator
    /// Where Bulk Data exports write their NDJSON files.
    public var exportDirectory: URL
    /// How much one search may ask for (chain links, OR values, ...); more is a 400.
    public var searchLimits: SearchLimits = .standard
    /// How long one database statement of a request may run before it is stopped (503);
    /// `nil` for no limit.
    public var statementTimeLimit: Duration? = SQLStatementTimeLimit.standard

    public init(
        basePath: String = "/fhir-server/api/v4", publicURL: String? = nil, defaultPageSize: Int = 10,
        maximumPageSize: Int = 1000, maximumBodySize: Int = 64 << 20, validator: ResourceValidator = ResourceValidator(),
        exportDirectory: URL = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-exports")
    ) {
        self.validator = validator
        self.exportDirectory = exportDirectory
        var path = basePath.hasPrefix("/") ? basePath : "/" + basePath
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        self.basePath = path == "/" ? "" : path
        self.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.defaultPageSize = defaultPageSize
        self.maximumPageSize = maximumPageSize
        self.maximumBodySize = maximumBodySize
    }
}
