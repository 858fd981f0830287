import FHIR
@testable import FHIRStore
import FHIRTestSupport
import Foundation
import Testing

/// The pool under a statement that fails on its first run on a connection: eight concurrent
/// PUTs that create one new id (seven of them meet a unique violation in the prepared create)
/// once left requests waiting for ever, because a failed first run closed its leased
/// connection (found by an attacker's read). Each round must answer within its deadline with
/// versions 1 to 8, and the pool must still serve a create afterwards. The deadlines are long
/// (a hang is for ever): in the full parallel test run every suite's pool competes for the
/// test server's connections.
@Suite struct PostgresPoolTests {
    static let postgres = TestDatabases.backends.filter { $0 == .postgres }

    /// `body`'s result, or nil when it has not finished after `seconds`.
    static func within<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async -> T? {
        let result = Locked<T?>(nil)
        let finished = AsyncStream<Void>.makeStream()
        let work = Task {
            if let value = try? await body() { result.with { $0 = value } }
            finished.continuation.yield()
        }
        let timer = Task {
            try? await Task.sleep(for: .seconds(seconds))
            finished.continuation.yield()
        }
        var iterator = finished.stream.makeAsyncIterator()
        _ = await iterator.next()
        timer.cancel()
        work.cancel()
        return result.with { $0 }
    }

    @Test(arguments: Self.postgres)
    func concurrentPutsCreatingOneIdAllAnswer(backend: TestBackend) async throws {
        let store = try await TestDatabases.makeStore(backend)
        for round in 0..<4 {
            let resource = try JSONParser.parse(#"{"resourceType":"Patient","id":"race-\#(round)","active":true}"#)
            let versions: [Int]? = await Self.within(60) {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            try await store.update(resource, type: "Patient", id: "race-\(round)", ifMatch: nil)
                                .resource.versionId
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
            }
            #expect(
                versions?.sorted() == Array(1...8),
                "round \(round): the eight updates \(versions == nil ? "hung for 60 s" : "gave \(versions!)")")
            // Does the store still serve a plain create afterwards?
            let created: StoredResource? = await Self.within(60) {
                try await store.create(try JSONParser.parse(#"{"resourceType":"Patient"}"#), type: "Patient")
            }
            #expect(created != nil, "round \(round): a create after the race hung for 60 s: the pool is stuck")
            if created == nil { break }
        }
        try? await store.close()
    }
}
