/// A random source that gives the same numbers for the same seed on every machine, so that a
/// failing hostile request can be made again from its seed and index (SplitMix64).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// A number in `0..<bound`.
    mutating func below(_ bound: Int) -> Int { Int.random(in: 0..<max(bound, 1), using: &self) }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }

    /// One of `items`.
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// A size that is usually small and sometimes very large: small sizes find parser slips,
    /// large ones find missing budgets.
    mutating func size(small: Int, large: Int) -> Int {
        chance(0.85) ? 1 + below(small) : small + below(max(large - small, 1))
    }
}

/// A request header as sent.
public struct HostileHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// One generated request: what to send and how to make it again.
public struct HostileRequest: Sendable {
    /// Its place in the sequence of its seed; `HostileRequestGenerator(seed:).request(index)`
    /// makes the same request again.
    public var index: Int
    /// What the generator meant to attack (`search.chain`, `body.deep`, `bundle.ifNoneExist`,
    /// ...): the first part of a failure's class.
    public var kind: String
    public var method: String
    /// The request target (path and query) exactly as it goes on the request line: printable
    /// ASCII, anything else percent-encoded.
    public var target: String
    public var headers: [HostileHeader]
    public var body: [UInt8]?

    public init(
        index: Int, kind: String, method: String, target: String, headers: [HostileHeader] = [], body: [UInt8]? = nil
    ) {
        self.index = index
        self.kind = kind
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// The request as text, cut to `limit` characters per part, for a failure message.
    public func rendered(limit: Int = 400) -> String {
        func cut(_ text: String) -> String {
            text.utf8.count <= limit ? text : String(text.prefix(limit)) + "... (\(text.utf8.count) bytes)"
        }
        var lines = ["\(method) \(cut(target))"]
        lines += headers.map { "\($0.name): \(cut($0.value))" }
        if let body {
            lines.append("")
            lines.append(cut(String(decoding: body, as: UTF8.self)))
        }
        return lines.joined(separator: "\n")
    }
}

/// Percent-encoding for request targets.
enum TargetEncoding {
    static let hex = Array("0123456789ABCDEF".utf8)

    /// `text` with every byte a client library would encode in a query name or value
    /// percent-encoded; `raw` keeps FHIR's search syntax characters (`. : , | $ /`) as they are.
    static func encode(_ text: String, keeping extra: String = ".:,|$/") -> String {
        let kept = Set(extra.utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            if isUnreserved(byte) || kept.contains(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `text` made fit for a request line without changing what a lenient client would send:
    /// only bytes outside printable ASCII, spaces and `#` are encoded, so broken escapes such as
    /// `%zz`, `..` and raw `&`, `=` or `?` stay hostile.
    static func wireSafe(_ text: String) -> String {
        var out: [UInt8] = []
        for byte in text.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "#") {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func isUnreserved(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            || byte == UInt8(ascii: ".")
    }
}
