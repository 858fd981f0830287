import Foundation

/// A PostgreSQL connection URL as libpq reads it, with one host or several:
/// `postgres://user:password@host1:5432,host2:5433/database`.
///
/// With several hosts the store writes to the one that is a primary (not in recovery), as
/// libpq's `target_session_attrs=read-write` does, and moves to another when that one stops
/// answering and a standby has been promoted (``PostgresDatabase``). Foundation's
/// URLComponents cannot read a comma-separated host list, hence this type.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    /// One server: a host name or address (an IPv6 address without its brackets) and a port.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public var scheme: String
    public var user: String?
    public var password: String?
    public var endpoints: [Endpoint]
    /// The database name; `nil` when the URL has no path.
    public var database: String?
    /// What follows `?`, kept as it was (without the `?`).
    public var query: String?

    /// The most hosts one URL may list.
    public static let maximumEndpoints = 16

    /// Reads `text`; `nil` unless it is a `postgres://` or `postgresql://` URL with at least one
    /// host and valid ports.
    public init?(_ text: String) {
        guard let schemeEnd = text.range(of: "://") else { return nil }
        scheme = String(text[..<schemeEnd.lowerBound])
        guard ["postgres", "postgresql"].contains(scheme) else { return nil }
        var rest = text[schemeEnd.upperBound...]
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let name = String(path).removingPercentEncoding, !name.contains("/") else { return nil }
                database = name
            }
        }
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let parts = userInfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts[0].removingPercentEncoding else { return nil }
            user = name.isEmpty ? nil : name
            if parts.count == 2 {
                guard let secret = parts[1].removingPercentEncoding else { return nil }
                password = secret
            }
        }
        let hosts = authority.split(separator: ",", omittingEmptySubsequences: false)
        guard hosts.count <= Self.maximumEndpoints else { return nil }
        var endpoints: [Endpoint] = []
        for host in hosts {
            guard let endpoint = Self.endpoint(host) else { return nil }
            endpoints.append(endpoint)
        }
        self.endpoints = endpoints
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`; the port defaults to 5432.
    private static func endpoint(_ text: Substring) -> Endpoint? {
        var host = text
        var port: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                port = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        // A name or an IPv4 address outside brackets, an IPv6 address (no zone) inside: nothing
        // that would change how the URL splits when it is written again.
        let allowed = text.hasPrefix("[") ? Self.addressBytes : Self.nameBytes
        guard !host.isEmpty, host.utf8.count <= 253, host.utf8.allSatisfy(allowed) else { return nil }
        let name = String(host)
        guard let port else { return Endpoint(host: name, port: 5432) }
        guard (1...5).contains(port.utf8.count), port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let number = Int(port), (1...65535).contains(number)
        else { return nil }
        return Endpoint(host: name, port: number)
    }

    /// What a host name or IPv4 address may hold: letters, digits, `.`, `-` and `_`.
    private static func nameBytes(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        return (0x30...0x39).contains(byte) || (0x61...0x7A).contains(lower) || byte == 0x2E || byte == 0x2D
            || byte == 0x5F
    }

    /// What an IPv6 address in brackets may hold: hex digits, `:` and `.`.
    private static func addressBytes(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        return (0x30...0x3A).contains(byte) || (0x61...0x66).contains(lower) || byte == 0x2E
    }

    /// `random_page_cost` for Caduceus's sessions when the URL does not give one.
    ///
    /// Why not PostgreSQL's 4: that prices a page read out of order as a disk seek, and a FHIR
    /// store's index tables are read out of order all the time, from memory. At 4 the planner
    /// chose a sequential scan of every Observation to meet a patient's 200 index rows (14-20 ms
    /// at 52,000 resources, BENCHMARKS.md); at 1.1, the value commonly given for SSDs and cached
    /// data, it probes the 200 rows (about 1 ms).
    public static let standardRandomPageCost = 1.1

    /// The settings each session gets on its first lease (``PostgresDatabase``, with `SET`, so
    /// that they hold for the session whatever the server's configuration says, and a pooler
    /// such as PgBouncer sees no startup parameter it does not know): `random_page_cost` from
    /// the URL's `random_page_cost=N`, else ``standardRandomPageCost``; none for
    /// `random_page_cost=server`, which leaves the server's own. Other query parameters are
    /// ignored. Throws when the URL's value is not `server` or a number from 0 to 1,000,000
    /// that PostgreSQL reads back as itself (a subnormal such as 1e-310 it refuses).
    public func sessionSettings() throws -> [(name: String, value: String)] {
        var cost: Double? = Self.standardRandomPageCost
        for pair in (query ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts[0] == "random_page_cost" else { continue }
            let text = parts.count == 2 ? String(parts[1]).removingPercentEncoding ?? "" : ""
            if text == "server" {
                cost = nil
                continue
            }
            guard text.utf8.count <= 32, let value = Double(text), value == 0 || value.isNormal,
                (0...1_000_000).contains(value)
            else {
                throw StoreError.configuration(
                    "random_page_cost in the PostgreSQL URL must be a number from 0 to 1000000, as in"
                        + " ?random_page_cost=1.1, or server for the server's own")
            }
            cost = value
        }
        return cost.map { [("random_page_cost", String($0))] } ?? []
    }

    /// The same servers and credentials, another database.
    public func with(database name: String) -> PostgresURL {
        var url = self
        url.database = name
        return url
    }

    /// The URL with its password replaced by `***`, for messages and logs.
    public var redacted: String { written(password: "***") }

    public var description: String { written(password: password.map(Self.encoded)) }

    /// The URL as text with `password` (already encoded, or a marker) in place of the password.
    private func written(password: String?) -> String {
        var text = scheme + "://"
        if user != nil || self.password != nil {
            text += Self.encoded(user ?? "")
            if let password, self.password != nil { text += ":" + password }
            text += "@"
        }
        text += endpoints.map(\.description).joined(separator: ",")
        if let database { text += "/" + Self.encoded(database) }
        if let query { text += "?" + query }
        return text
    }

    private static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}
