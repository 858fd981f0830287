import FHIR
import Foundation
import NIOConcurrencyHelpers

/// The criteria of `POST _search` requests, kept by the server so that the paging links of
/// the answer name a key (`?_getpages=KEY&_page=N`) instead of repeating a form of any size in
/// a URL (past ~64 KB no client or server takes it).
///
/// Only the criteria are kept, never results: each page is the search run again, under the
/// grant of the request that asks for it. A key is random (a version 4 UUID), answers only
/// requests with the same `Authorization` and tenant headers as the one that made it (another
/// client cannot read the criteria, which may name a patient), and lives ``lifetime``; at most
/// ``capacity`` keys and ``maximumBytes`` of criteria are kept, the oldest going first. One owner
/// keeps at most ``ownerCapacity`` keys and ``ownerMaximumBytes``: past them its own oldest go, so
/// that one client's flood of searches does not expire everyone else's paging links (with
/// authorization off, the owner is whatever `Authorization` header a client sends).
public final class StoredSearches: Sendable {
    public let capacity: Int
    public let lifetime: TimeInterval
    public let maximumBytes: Int
    public let ownerCapacity: Int
    public let ownerMaximumBytes: Int

    struct Entry {
        var owner: String
        var path: String
        var parameters: [(name: String, value: String)]
        var expires: Date
        var bytes: Int
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Keys, oldest first.
        var order: [String] = []
        var bytes = 0
        /// Keys and bytes kept for each owner.
        var owners: [String: (count: Int, bytes: Int)] = [:]

        mutating func remove(_ key: String) {
            guard let entry = entries.removeValue(forKey: key) else { return }
            bytes -= entry.bytes
            let held =
                owners[entry.owner].map { (count: $0.count - 1, bytes: $0.bytes - entry.bytes) } ?? (count: 0, bytes: 0)
            owners[entry.owner] = held.count > 0 ? held : nil
        }

        mutating func add(_ key: String, _ entry: Entry) {
            entries[key] = entry
            order.append(key)
            bytes += entry.bytes
            let held = owners[entry.owner] ?? (count: 0, bytes: 0)
            owners[entry.owner] = (held.count + 1, held.bytes + entry.bytes)
        }

        /// Drops `owner`'s oldest keys until one more of `adding` bytes fits its share.
        mutating func trim(owner: String, capacity: Int, maximumBytes: Int, adding: Int) {
            func fits() -> Bool {
                let held = owners[owner] ?? (count: 0, bytes: 0)
                return held.count + 1 <= capacity && held.bytes + adding <= maximumBytes
            }
            guard !fits() else { return }
            var dropped = Set<String>()
            for key in order where entries[key]?.owner == owner {
                remove(key)
                dropped.insert(key)
                if fits() { break }
            }
            order.removeAll { dropped.contains($0) }
        }

        /// Drops the expired, then the oldest while over the bounds.
        mutating func trim(now: Date, capacity: Int, maximumBytes: Int, adding: Int) {
            var dropped = 0
            for key in order {
                guard let entry = entries[key] else {
                    dropped += 1
                    continue
                }
                let over = entries.count + 1 > capacity || bytes + adding > maximumBytes
                guard entry.expires <= now || over else { break }
                remove(key)
                dropped += 1
            }
            order.removeFirst(dropped)
        }
    }

    private let state = NIOLockedValueBox(State())

    public init(
        capacity: Int = 1000, lifetime: TimeInterval = 600, maximumBytes: Int = 32 << 20, ownerCapacity: Int = 100,
        ownerMaximumBytes: Int = 4 << 20
    ) {
        self.capacity = max(1, capacity)
        self.lifetime = lifetime
        self.maximumBytes = maximumBytes
        self.ownerCapacity = max(1, ownerCapacity)
        self.ownerMaximumBytes = ownerMaximumBytes
    }

    /// Keeps `parameters` of a search on `path` made by `owner`; returns the key.
    public func store(_ parameters: [(name: String, value: String)], path: String, owner: String, now: Date = Date())
        -> String
    {
        let key = UUID().uuidString.lowercased()
        let bytes = parameters.reduce(owner.utf8.count + path.utf8.count) {
            $0 + $1.name.utf8.count + $1.value.utf8.count + 16
        }
        let entry = Entry(
            owner: owner, path: path, parameters: parameters, expires: now.addingTimeInterval(lifetime), bytes: bytes)
        let (capacity, maximumBytes, ownerCapacity, ownerMaximumBytes) = (
            capacity, maximumBytes, ownerCapacity, ownerMaximumBytes
        )
        state.withLockedValue { state in
            state.trim(owner: owner, capacity: ownerCapacity, maximumBytes: ownerMaximumBytes, adding: bytes)
            state.trim(now: now, capacity: capacity, maximumBytes: maximumBytes, adding: bytes)
            state.add(key, entry)
        }
        return key
    }

    /// The criteria `key` names for `owner` on `path`; `nil` when unknown, expired, or another's.
    public func parameters(key: String, path: String, owner: String, now: Date = Date()) -> [(
        name: String, value: String
    )]? {
        state.withLockedValue { state in
            guard let entry = state.entries[key], entry.expires > now, entry.owner == owner, entry.path == path else {
                return nil
            }
            return entry.parameters
        }
    }

    /// How many searches are kept now.
    public var count: Int { state.withLockedValue { $0.entries.count } }
}
