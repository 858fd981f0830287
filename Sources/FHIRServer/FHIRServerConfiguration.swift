import Foundation
import FHIR
import FHIRStore

/// How the FHIR API is exposed.
public struct FHIRServerConfiguration: Sendable {
    /// The path the API lives under, such as `/fhir-server/api/v4` (IBM FHIR Server's).
    public var basePath: String
    /// The scheme and authority for absolute URLs (`Location`, `fullUrl`, links), such as
    /// `https://fhir.example.org`. When `nil`, the request's `Host` header is used if it names
    /// this machine (loopback) or one of ``allowedHosts``, so that clients that refuse links to
    /// another host (fhirpy) can follow them; any other Host gets ``fallbackOrigin``.
    public var publicURL: String?
    /// Host names (without port) whose `Host` header may decide absolute URLs without a `publicURL`.
    public var allowedHosts: [String]
    /// The scheme and authority used when neither `publicURL` nor an allowed Host applies.
    public var fallbackOrigin: String
    /// The page size when a search has no `_count`.
    public var defaultPageSize: Int
    /// The largest `_count` honoured.
    public var maximumPageSize: Int
    /// Largest request body accepted, in bytes (413 beyond); also the largest resource a JSON
    /// Patch may make. 16 MiB: a 10 MB Synthea Bundle passes.
    public var maximumBodySize: Int {
        didSet { validator.patchLimits.bytes = maximumBodySize }
    }
    /// What creates, updates and PATCHes (and transaction and batch entries) answer with when
    /// the request has no `Prefer: return=`: the resource by default; `.minimal` is IBM FHIR
    /// Server's empty body (`caduceus serve --default-return minimal`).
    public var defaultReturn: ReturnPreference = .standard
    /// What every write is checked against.
    public var validator: ResourceValidator
    /// Where Bulk Data exports write their NDJSON files.
    public var exportDirectory: URL
    /// How much one search may ask for (chain links, OR values, ...); more is a 400.
    public var searchLimits: SearchLimits = .standard
    /// How long one database statement of a request may run before it is stopped (503);
    /// `nil` for no limit.
    public var statementTimeLimit: Duration? = SQLStatementTimeLimit.standard
    /// How long an export's files are kept after the job ends.
    public var exportRetention: Duration
    /// The most export jobs kept at once (429 beyond).
    public var maximumExportJobs: Int
    /// Connections and their timeouts (``ConnectionLimits``).
    public var connections: ConnectionLimits
    /// The most entries in a transaction or batch Bundle (413 beyond). Synthea's patient
    /// Bundles have a few hundred (a 10 MB one about 3,000); each entry can be a search.
    public var maximumBundleEntries = FHIRServerConfiguration.defaultMaximumBundleEntries
    /// The most bytes of resources and outcomes a transaction or batch answers with: a
    /// transaction past it is rolled back (413), a batch answers the entries past it 413
    /// without running them. Four times the default body limit, so that any transaction the
    /// server accepts comes back with its resources (the default, `Prefer: return=representation`).
    public var maximumResponseSize = FHIRServerConfiguration.defaultMaximumResponseSize
    /// How long a transaction or batch may run: a transaction past it is rolled back (503), a
    /// batch answers its remaining entries 503 without running them. Checked between entries
    /// (the statement time limit bounds each one); the largest Synthea Bundle takes about a
    /// second, a 10 MB one about ten.
    public var maximumBundleDuration: Duration = .seconds(120)
    /// How many searches run at once, server-wide, and how long one waits for its turn (503
    /// beyond). Shared by every copy of this configuration.
    public var searchGate = SearchGate()
    /// The criteria of `POST _search` requests, which their paging links name by a key.
    /// Shared by every copy of this configuration.
    public var storedSearches = StoredSearches()

    public static let defaultMaximumBodySize = 16 << 20
    public static let defaultMaximumBundleEntries = 10_000
    public static let defaultMaximumResponseSize = 64 << 20

    public init(
        basePath: String = "/fhir-server/api/v4", publicURL: String? = nil, allowedHosts: [String] = [],
        fallbackOrigin: String = "http://localhost", defaultPageSize: Int = 10, maximumPageSize: Int = 1000,
        maximumBodySize: Int = FHIRServerConfiguration.defaultMaximumBodySize,
        validator: ResourceValidator = ResourceValidator(),
        exportDirectory: URL = FileManager.default.temporaryDirectory.appendingPathComponent("caduceus-exports"),
        exportRetention: Duration = ExportJobs.defaultRetention, maximumExportJobs: Int = ExportJobs.defaultMaximumJobs,
        connections: ConnectionLimits = ConnectionLimits()
    ) {
        self.validator = validator
        self.validator.patchLimits.bytes = maximumBodySize
        self.exportDirectory = exportDirectory
        self.exportRetention = exportRetention
        self.maximumExportJobs = maximumExportJobs
        self.connections = connections
        var path = basePath.hasPrefix("/") ? basePath : "/" + basePath
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        self.basePath = path == "/" ? "" : path
        self.publicURL = publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.allowedHosts = allowedHosts.map { $0.lowercased() }
        self.fallbackOrigin = fallbackOrigin.hasSuffix("/") ? String(fallbackOrigin.dropLast()) : fallbackOrigin
        self.defaultPageSize = defaultPageSize
        self.maximumPageSize = maximumPageSize
        self.maximumBodySize = maximumBodySize
    }
}

/// What one client's connections may hold: without these, idle connections (or ones that send
/// a request's head a byte at a time) pile up until the process runs out of file handles and
/// every request fails.
public struct ConnectionLimits: Sendable {
    /// A connection with nothing in progress is closed after this long.
    public var idleTimeout: Duration
    /// A request's head (request line and headers) must arrive within this long of its first
    /// byte, or of the connection's opening for its first request (a silent connection is not
    /// kept for the whole idle timeout).
    public var headerTimeout: Duration
    /// The most connections open at once; more wait in the listen backlog.
    public var maximumConnections: Int
    /// A request's body may take this long, plus one second per `minimumBodyRate` bytes
    /// received, of the server waiting for it (a body trickled a byte at a time held its
    /// connection for ever, each byte resetting the idle timeout).
    public var bodyTimeout: Duration
    /// Bytes a second a body must keep up, on average, once `bodyTimeout` is spent.
    public var minimumBodyRate: Int
    /// The most connections open at once from one peer address (0: no such limit); more are
    /// closed as they are accepted, so that one client cannot hold every connection.
    public var maximumConnectionsPerAddress: Int

    public static let defaultIdleTimeout = Duration.seconds(60)
    public static let defaultHeaderTimeout = Duration.seconds(20)
    public static let defaultBodyTimeout = Duration.seconds(60)
    /// 1 KiB/s: a 10 MB Bundle may take almost three hours.
    public static let defaultMinimumBodyRate = 1024
    public static let defaultMaximumConnectionsPerAddress = 256

    /// Half the process's file handles, at most 4,096: the rest stay for databases and files.
    public static var defaultMaximumConnections: Int {
        var limit = rlimit()
        #if os(Linux)
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
            let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur != rlim_t.max else { return 4096 }
        return max(64, min(4096, Int(clamping: limit.rlim_cur / 2)))
    }

    public init(
        idleTimeout: Duration = ConnectionLimits.defaultIdleTimeout,
        headerTimeout: Duration = ConnectionLimits.defaultHeaderTimeout,
        maximumConnections: Int = ConnectionLimits.defaultMaximumConnections,
        bodyTimeout: Duration = ConnectionLimits.defaultBodyTimeout,
        minimumBodyRate: Int = ConnectionLimits.defaultMinimumBodyRate,
        maximumConnectionsPerAddress: Int = ConnectionLimits.defaultMaximumConnectionsPerAddress
    ) {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.maximumConnections = maximumConnections
        self.bodyTimeout = bodyTimeout
        self.minimumBodyRate = max(1, minimumBodyRate)
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
    }
}
