import FHIR
import FHIRStore
import Foundation

/// Writes one export: walks each type in id order (or each patient's compartment), appends
/// each resource as a line of `<Type>.ndjson`, and returns the manifest.
struct ExportWriter {
    let request: ExportJobs.Request
    let store: any FHIRStore
    let jobId: String
    let transactionTime: Int64
    /// Where the NDJSON lines go.
    let outputs: any ExportOutputs
    /// Told the count so far after each page or patient; throws to stop the export.
    let progress: @Sendable (Int) async throws -> Void

    static let pageSize = 500

    /// Hands every current resource of `type` to `body`, a page at a time in id order.
    func walk(type: String, since: Int64?, _ body: ([StoredResource]) async throws -> Void) async throws {
        var after: String?
        while true {
            try Task.checkCancellation()
            let page = try await store.reading { [after] in
                try await $0.resources(ofType: type, since: since, after: after, limit: Self.pageSize)
            }
            try await body(page)
            guard page.count == Self.pageSize, let last = page.last else { return }
            after = last.id
        }
    }

    func run() async throws -> JSONValue {
        let outputs = outputs
        var exported = 0
        func keep(_ resource: StoredResource) -> Bool {
            if let since = request.since, resource.lastUpdated < since { return false }
            if let types = request.types, !types.contains(resource.type) { return false }
            return true
        }
        switch request.scope {
        case .system:
            let types = request.types.map { Array($0).sorted() } ?? fhirResourceTypeNames
            for type in types {
                try await walk(type: type, since: request.since) { page in
                    for resource in page { try await outputs.write(resource) }
                    exported += page.count
                    try await progress(exported)
                }
            }
        case .patients, .group:
            var patientIds: [String] = []
            if case .group(let groupId) = request.scope {
                let group = try await store.read(type: "Group", id: groupId)
                let json = try JSONParser.parse(group.body ?? "{}")
                patientIds = (json["member"]?.arrayValue ?? []).compactMap { member in
                    guard let reference = member["entity"]?["reference"]?.stringValue,
                        let parsed = ResourceReference(parsing: reference), parsed.type == "Patient"
                    else { return nil }
                    return parsed.id
                }
            } else {
                try await walk(type: "Patient", since: nil) { page in patientIds += page.map(\.id) }
            }
            var seen = Set<ResourceKey>()
            for patientId in patientIds {
                try Task.checkCancellation()
                // A Group may name patients that are gone: they add nothing.
                let resources = try await store.reading { transaction -> [StoredResource] in
                    do {
                        return try await EverythingOperation.compartment(ofPatient: patientId, in: transaction)
                    } catch let error as FHIRError where error.status == 404 || error.status == 410 {
                        return []
                    }
                }
                for resource in resources
                where keep(resource) && seen.insert(ResourceKey(type: resource.type, id: resource.id)).inserted {
                    try await outputs.write(resource)
                    exported += 1
                }
                try await progress(exported)
            }
        }
        let counts = try await outputs.finish()
        let files = counts.keys.sorted().map { type -> JSONValue in
            .object(
                JSONObject([
                    ("type", .string(type)),
                    ("url", .string("\(request.baseURL)/$export-file/\(jobId)/\(type).ndjson")),
                    ("count", .number(String(counts[type]!))),
                ]))
        }
        return .object(
            JSONObject([
                ("transactionTime", .string(FHIRDateRange.instantString(milliseconds: transactionTime))),
                ("request", .string(request.url)),
                ("requiresAccessToken", .bool(request.requiresAccessToken)),
                ("output", .array(files)),
                ("error", .array([])),
            ]))
    }
}

/// Where an export writes each type's NDJSON lines: files of a directory (``ExportFiles``), or
/// the database every replica reaches (``ExportChunks``).
protocol ExportOutputs: AnyObject, Sendable {
    /// Appends `resource` (its stored compact JSON, one line) to its type's output.
    func write(_ resource: StoredResource) async throws
    /// Writes what is buffered and closes everything; the lines of each type.
    func finish() async throws -> [String: Int]
}

/// Output files of one job's directory, by type, with their line counts.
final class ExportFiles: ExportOutputs, @unchecked Sendable {
    var handles: [String: FileHandle] = [:]
    var counts: [String: Int] = [:]
    let directory: URL

    init(directory: URL) { self.directory = directory }

    deinit { close() }

    func write(_ resource: StoredResource) throws {
        guard let body = resource.body else { return }
        let handle: FileHandle
        if let open = handles[resource.type] {
            handle = open
        } else {
            let url = directory.appendingPathComponent("\(resource.type).ndjson")
            // Readable by the server's user only: the file holds patient data.
            guard
                FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
            else {
                throw FHIRError(status: 500, code: "exception", "The export could not create its \(resource.type) file")
            }
            handle = try FileHandle(forWritingTo: url)
            handles[resource.type] = handle
        }
        // Stored bodies are compact JSON: one line each, as NDJSON requires.
        handle.write(Data((body + "\n").utf8))
        counts[resource.type, default: 0] += 1
    }

    func finish() throws -> [String: Int] {
        close()
        return counts
    }

    func close() {
        for handle in handles.values { try? handle.close() }
        handles = [:]
    }
}
