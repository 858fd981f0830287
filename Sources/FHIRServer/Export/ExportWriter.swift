import FHIR
import FHIRStore
import Foundation

/// Writes one export: walks each type in id order (or each patient's compartment), appends
/// each resource as a line of `<Type>.ndjson`, and returns the manifest.
struct ExportWriter {
    let request: ExportJobs.Request
    let store: any FHIRStore
    let directory: URL
    let jobId: String
    let transactionTime: Int64
    let progress: @Sendable (Int) async -> Void

    static let pageSize = 500

    /// Open output files by type, with their line counts.
    final class Outputs {
        var handles: [String: FileHandle] = [:]
        var counts: [String: Int] = [:]
        let directory: URL

        init(directory: URL) { self.directory = directory }

        func write(_ resource: StoredResource) throws {
            guard let body = resource.body else { return }
            let handle: FileHandle
            if let open = handles[resource.type] {
                handle = open
            } else {
                let url = directory.appendingPathComponent("\(resource.type).ndjson")
                FileManager.default.createFile(atPath: url.path, contents: nil)
                handle = try FileHandle(forWritingTo: url)
                handles[resource.type] = handle
            }
            // Stored bodies are compact JSON: one line each, as NDJSON requires.
            handle.write(Data((body + "\n").utf8))
            counts[resource.type, default: 0] += 1
        }

        func close() {
            for handle in handles.values { try? handle.close() }
        }
    }

    func run() async throws -> JSONValue {
        let outputs = Outputs(directory: directory)
        defer { outputs.close() }
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
                var after: String?
                while true {
                    try Task.checkCancellation()
                    let page = try await store.reading { [after] in
                        try await $0.resources(ofType: type, since: request.since, after: after, limit: Self.pageSize)
                    }
                    for resource in page { try outputs.write(resource) }
                    exported += page.count
                    await progress(exported)
                    guard page.count == Self.pageSize, let last = page.last else { break }
                    after = last.id
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
                var after: String?
                while true {
                    let page = try await store.reading { [after] in
                        try await $0.resources(ofType: "Patient", since: nil, after: after, limit: Self.pageSize)
                    }
                    patientIds += page.map(\.id)
                    guard page.count == Self.pageSize, let last = page.last else { break }
                    after = last.id
                }
            }
            var seen = Set<ResourceKey>()
            let compartment = Compartment.patient
            for patientId in patientIds {
                try Task.checkCancellation()
                let resources = try await store.reading { transaction -> [StoredResource] in
                    guard let patient = try? await transaction.read(type: "Patient", id: patientId) else { return [] }
                    let members = try await transaction.referrers(to: "Patient", id: patientId)
                        .filter { compartment.contains(type: $0.type, linkedBy: $0.parameter) }
                        .map { ResourceKey(type: $0.type, id: $0.id) }
                    return [patient] + (try await transaction.resources(Array(Set(members))))
                }
                for resource in resources where keep(resource) && seen.insert(ResourceKey(type: resource.type, id: resource.id)).inserted {
                    try outputs.write(resource)
                    exported += 1
                }
                await progress(exported)
            }
        }
        let files = outputs.counts.keys.sorted().map { type -> JSONValue in
            .object(JSONObject([
                ("type", .string(type)),
                ("url", .string("\(request.baseURL)/$export-file/\(jobId)/\(type).ndjson")),
                ("count", .number(String(outputs.counts[type]!))),
            ]))
        }
        return .object(JSONObject([
            ("transactionTime", .string(FHIRDateRange.instantString(milliseconds: transactionTime))),
            ("request", .string(request.url)),
            ("requiresAccessToken", false),
            ("output", .array(files)),
            ("error", .array([])),
        ]))
    }
}
